// Writing rows to the suite's table: a multi-row INSERT (one statement, one transaction) or COPY.
import type { VectorDialect } from "../sql/vector-dialect.ts";
import { vectorLiteral, type DatasetRow } from "./dataset.ts";
import type { Queryable } from "./load-loops.ts";
import { BENCH_TABLE } from "./search-sql.ts";

export async function insertRows(db: Queryable, dialect: VectorDialect, rows: DatasetRow[]): Promise<void> {
  const values: unknown[] = [];
  const tuples = rows.map((row, index) => {
    values.push(row.namespace, row.id, vectorLiteral(row.embedding), `bench row ${row.id}`);
    const p = index * 4;
    return `($${p + 1}, $${p + 2}, $${p + 3}::${dialect.castType}, $${p + 4})`;
  });
  await db.query(`INSERT INTO ${BENCH_TABLE} (namespace, id, embedding, content) VALUES ${tuples.join(", ")}`, values);
}
