import test from "ava";
import { localNetworkOctet } from "../../local/layout.ts";

test("DPC_LOCAL_NETWORK: default 0, any octet 0-255, anything else refused naming the variable and value", (t) => {
  t.is(localNetworkOctet({}), 0);
  t.is(localNetworkOctet({ DPC_LOCAL_NETWORK: "7" }), 7);
  t.is(localNetworkOctet({ DPC_LOCAL_NETWORK: "255" }), 255);
  for (const bad of ["256", "-1", "1.5", "x", ""]) {
    t.throws(() => localNetworkOctet({ DPC_LOCAL_NETWORK: bad }), { message: new RegExp(`DPC_LOCAL_NETWORK: ${JSON.stringify(bad).replace(/[.]/g, "\\.")} is not allowed; expected an integer 0-255`) });
  }
});
