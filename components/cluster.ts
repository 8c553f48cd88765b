// The whole cluster: passwords, the platform's shared resources, etcd, the Citus coordinator group,
// the worker groups and the router, in dependency order; then the schema, the post-deploy benchmark,
// and monitoring.
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { certificateAuthorityProblems, planTopology, groupName, type ClusterConfig } from "./spec.ts";
import { ROLES, type ClusterSecrets, type PoolerCredentials } from "./render/index.ts";
import { createPlatform } from "./platform/index.ts";
import { Etcd } from "./etcd.ts";
import { PatroniGroup } from "./patroni-group.ts";
import { Router, pgbouncerEndpointOf, readWriteEndpointOf } from "./router.ts";
import { passwordRotation } from "./password-rotation.ts";
import { PASSWORD_NAMES, passwordProblems, validatePasswords, type PasswordName } from "./rotation/plan.ts";
import { MONITOR_PASSWORD_KEY, PASSWORD_CONFIG_KEYS } from "./stack-config.ts";
import { Schema } from "./schema.ts";
import { postDeployBenchmark } from "./benchmark-run.ts";
import type { Summary } from "./benchmark-step.ts";
import { Monitoring } from "./monitoring.ts";
import { PostgresConfig } from "./postgres-config.ts";
import { dynamicParameters } from "./render/patroni.ts";
import { WorkerMembership, WorkerRebalance } from "./scaling/worker-scaling.ts";
import { Rollout } from "./rollout-run.ts";
import { PasswordRotationStep } from "./rotation-run.ts";
import { WorkerScalingStep } from "./scaling-run.ts";
import { etcdRollingReplacement, rollingReplacement } from "./rolling-replacement.ts";
import { Certificates } from "./certificates.ts";
import { certificatePlan } from "./tls/plan.ts";
import type { CertificateAuthority } from "./tls/types.ts";
import { containerAddressing, containerRouterNames } from "./render/container.ts";
import { sessionPoolDatabase } from "./render/pgbouncer.ts";
import { podsService } from "./platform/kubernetes/naming.ts";

export { PASSWORD_NAMES, type PasswordName };

/** A resource option's dependsOn as a list, to add to it. */
function dependencyList(dependsOn: pulumi.ResourceOptions["dependsOn"]): pulumi.Input<pulumi.Resource>[] {
  if (dependsOn === undefined) return [];
  return Array.isArray(dependsOn) ? dependsOn : [dependsOn as pulumi.Input<pulumi.Resource>];
}

export interface ClusterArgs {
  /** Validated configuration (parseClusterConfig). */
  readonly config: ClusterConfig;
  /**
   * Passwords from secret stack config; each missing one is generated. Never passed on to super():
   * component inputs are saved in the state.
   */
  readonly passwords?: Partial<Record<PasswordName, pulumi.Input<string> | undefined>>;
  /** Grafana's admin password from secret config; generated when missing. Never passed to super(). */
  readonly grafanaAdminPassword?: pulumi.Input<string>;
  /** The exporters' role's password from secret config; generated when missing. Never passed to super(). */
  readonly monitorPassword?: pulumi.Input<string>;
  /**
   * A cluster CA from secret config (tlsCaCertificate, tlsCaKey: PEM); either may be missing, which
   * certificateAuthorityProblems refuses unless both are. Absent: the program creates a CA. Never
   * passed to super().
   */
  readonly certificateAuthority?: { cert?: pulumi.Input<string>; key?: pulumi.Input<string> };
}

export class Cluster extends pulumi.ComponentResource {
  /** postgresql:// URL of the application role through PgBouncer. Secret. */
  readonly appConnectionString: pulumi.Output<string>;
  /** host:port of the coordinator primary (HAProxy). */
  readonly readWriteEndpoint: string;
  /** host:port of the coordinator replicas (HAProxy). */
  readonly readOnlyEndpoint: string;
  /** host:port of PgBouncer. */
  readonly pgbouncerEndpoint: string;
  /** etcd client URLs on the cluster network. */
  readonly etcdEndpoints: string[];
  /** Patroni member names per Citus group ("0" is the coordinator group). */
  readonly membersPerGroup: Record<string, string[]>;
  /** Id of the last migration applied to the database. */
  readonly schemaVersion: pulumi.Output<string>;
  /**
   * What the last rolling change did, per group: parameters changed, members restarted, pods deleted
   * (kubernetes), switchovers with their pause. Docker: the PostgresConfig resource's outcome;
   * kubernetes: the rollout Job's report.
   */
  readonly rolloutReport: pulumi.Output<unknown>;
  /** Summary of the post-deploy benchmark; undefined when `benchmarkEnabled` is false. */
  readonly benchmarkSummary?: pulumi.Output<Summary>;
  /** host:port of Prometheus. */
  readonly prometheusEndpoint: string;
  /** host:port of Grafana. */
  readonly grafanaEndpoint: string;
  /** Grafana's `admin` password. Secret. */
  readonly grafanaAdminPassword: pulumi.Output<string>;
  /** The cluster CA's certificate (PEM): what clients verify every server with. Not secret. */
  readonly caCertificate: pulumi.Output<string>;
  /**
   * The application's URL through PgBouncer with `sslmode=verify-full` (secret): the client needs the
   * CA certificate as its root (`sslrootcert=ca.crt` or PGSSLROOTCERT), and dials a name the router's
   * certificate carries (endpointHost on docker).
   */
  readonly appConnectionStringVerifyFull: pulumi.Output<string>;

  constructor(name: string, args: ClusterArgs, opts?: pulumi.ComponentResourceOptions) {
    const { config } = args;
    // The config holds no secret; the passwords stay out of super() on purpose.
    super("dpc:index:Cluster", name, { config }, opts);

    const topology = planTopology(config);
    const secrets = this.clusterSecrets(name, args.passwords ?? {});
    const platform = createPlatform(config, this);
    // TLS on every connection (issue 14): the CA and one certificate per node, etcd member and the
    // router, named by the addresses each is dialled at on this platform.
    const addressing = containerAddressing(config, topology, platform.hostNaming);
    const plan = certificatePlan(topology, addressing, { routerNames: containerRouterNames(config, topology), etcdLoopback: true });
    const certificates = new Certificates(
      `${topology.scope}-certificates`,
      { name: topology.scope, plan, authority: this.suppliedAuthority(args.certificateAuthority) },
      { parent: this },
    );
    const tls = certificates.bundle;
    const ca = certificates.caCertificate;
    // The exporters' role (ROLES.monitor: pg_monitor only): its password set by the Schema step.
    const monitorPassword = pulumi.secret(
      pulumi.output(args.monitorPassword ?? new random.RandomPassword(`${name}-monitor-password`, { length: 32, special: false }, { parent: this }).result).apply((password) => {
        const problems = passwordProblems(MONITOR_PASSWORD_KEY, password);
        if (problems.length > 0) throw new Error(`invalid password(s):\n  - ${problems.join("\n  - ")}`);
        return password;
      }),
    );

    // PgBouncer's own credentials (its auth file holds these alone): generated, never from the stack's
    // password config, so no rotation changes a file of PgBouncer's (README, "Rotating passwords").
    const generated = (suffix: string) => new random.RandomPassword(`${name}-${suffix}`, { length: 32, special: false }, { parent: this }).result;
    const pooler: pulumi.Output<PoolerCredentials> = pulumi.secret(
      pulumi.all([generated("pooler-lookup-password"), generated("pooler-admin-password"), monitorPassword]).apply(([lookup, admin, monitor]) => ({ lookup, admin, monitor })),
    );
    const poolerAdminUrl = pulumi.secret(
      pooler.apply((p) => `postgresql://${ROLES.poolerAdmin}:${encodeURIComponent(p.admin)}@${pgbouncerEndpointOf(config, topology, platform)}/pgbouncer`),
    );

    // Children do not inherit a component's dependsOn (index.ts: the DataIdentity): hand it on to
    // the processes, so that none starts or is replaced before it passed.
    // A changed password reaches the database (roles, pg_dist_authinfo) before any process gets it:
    // every process that carries a password depends on the rotation.
    // Docker: the PasswordRotation resource rotates from the Pulumi process (HAProxy's published
    // port). Kubernetes: a Job in the cluster runs the same step (components/rotation-run.ts).
    const rotation =
      config.platform === "docker"
        ? [
            passwordRotation(
              `${topology.scope}-password-rotation`,
              {
                passwords: secrets,
                readWriteEndpoint: readWriteEndpointOf(config, topology, platform),
                database: config.database,
                pgbouncerEndpoint: pgbouncerEndpointOf(config, topology, platform),
                poolerDatabases: [config.database, sessionPoolDatabase(config)],
                ca,
              },
              { parent: this, dependsOn: dependencyList(opts?.dependsOn) },
            ),
          ]
        : [];
    // Kubernetes: the key of the rotation and schema Jobs' triggers (components/step-trigger.ts), so
    // that a trigger, readable in the namespace, lets nobody test guessed passwords offline.
    const stepTriggerKey = config.platform === "docker" ? undefined : generated("step-trigger-key");
    const rotationStep =
      config.platform === "docker"
        ? undefined
        : new PasswordRotationStep(
            `${topology.scope}-rotation`,
            {
              config,
              platform,
              passwords: secrets,
              readWriteEndpoint: readWriteEndpointOf(config, topology, platform),
              ca,
              triggerKey: stepTriggerKey!,
              // Step 3 at each PgBouncer pod (its headless `-pods` Service lists the ready ones).
              pgbouncer: {
                endpoint: pgbouncerEndpointOf(config, topology, platform),
                pods: platform.hostNaming.host(podsService(`${topology.scope}-pgbouncer`)),
                databases: [config.database, sessionPoolDatabase(config)],
              },
            },
            { parent: this, dependsOn: dependencyList(opts?.dependsOn) },
          );
    const previous = rotation[0]?.previous ?? rotationStep?.previous;
    const first = [...dependencyList(opts?.dependsOn), ...rotation, ...(rotationStep ? [rotationStep] : [])];
    // Docker: a changed database container is replaced in its member's turn, one at a time per group
    // (components/rolling-replacement.ts). Kubernetes: its StatefulSets update OnDelete (kubernetesRollout).
    const turns =
      config.platform === "docker"
        ? rollingReplacement({
            config,
            topology,
            secrets,
            previous: rotation[0]?.previous,
            poolerAdminUrl,
            readWriteEndpoint: readWriteEndpointOf(config, topology, platform),
            ca,
          })
        : undefined;
    // Docker: a changed etcd container (a new etcdImage) is replaced one member at a time too, with
    // Patroni paused meanwhile (its REST API's passwords and the CA, for the pause).
    // Its fingerprint key is generated, never rotated: etcd's files hold no password, so a rotation
    // must not change its labels (a changed label replaces the container).
    const etcdTurns = config.platform === "docker" ? etcdRollingReplacement(config, topology, generated("etcd-fingerprint-key"), { secrets, previous: rotation[0]?.previous, ca }) : undefined;
    const etcd = new Etcd(`${topology.scope}-etcd`, { config, topology, platform, certificates: tls, ...(etcdTurns ? { turns: etcdTurns } : {}) }, { parent: this, dependsOn: first });
    // Patroni needs its DCS first. HAProxy routes to the coordinator group: created once that exists.
    const coordinator = new PatroniGroup(groupName(topology.scope, 0), { config, topology, group: 0, platform, secrets, certificates: tls, turns }, { parent: this, dependsOn: [...first, etcd] });
    // PgBouncer waits for the Schema step (its lookup role, migration 011), which is created below:
    // the Schema needs HAProxy, so the router exists first and PgBouncer's dependency resolves later.
    let schemaCreated!: (schema: pulumi.Resource) => void;
    const schemaReady = new Promise<pulumi.Resource>((resolve) => (schemaCreated = resolve));
    const router = new Router(topology.routerName, { config, topology, platform, pooler, certificates: tls, pgbouncerDependsOn: [schemaReady] }, { parent: this, dependsOn: [coordinator] });
    // Superuser through HAProxy's read-write listener: the coordinator leader, in the Citus database.
    const coordinatorUrl = secrets.apply(
      (s) => `postgresql://${ROLES.superuser}:${encodeURIComponent(s.superuser)}@${router.readWriteEndpoint}/${config.database}`,
    );
    // Each worker group after its membership (components/scaling/worker-scaling.ts): when the group
    // goes, its containers are deleted first, then the membership removes its pg_dist_node rows.
    // Kubernetes: these would dial the cluster from outside it; the scaling Job below does both
    // (components/scaling-run.ts).
    const scaling = config.platform === "docker";
    const workers = topology.groups.slice(1).map((_, index) => {
      const group = index + 1;
      const name = groupName(topology.scope, group);
      const membership = scaling
        ? [new WorkerMembership(`${name}-membership`, { connectionString: coordinatorUrl, group, ca }, { parent: this, dependsOn: [coordinator, ...router.haproxy] })]
        : [];
      return new PatroniGroup(name, { config, topology, group, platform, secrets, certificates: tls, turns }, { parent: this, dependsOn: [...first, etcd, ...membership] });
    });
    const groups = [coordinator, ...workers];
    const restAuth = secrets.apply((s) => `${ROLES.restApi}:${s.restApi}`);
    const readWriteUrl = secrets.apply((s) => `postgresql://${ROLES.superuser}:${encodeURIComponent(s.superuser)}@${router.readWriteEndpoint}/postgres`);

    // Kubernetes: the PostgreSQL parameters and the Patroni pods' ordered restart, as a Job in the
    // cluster (components/rollout-run.ts), before the schema and the benchmark (which would otherwise
    // run through a switchover). Docker: the PostgresConfig resource below; containers are replaced by Pulumi.
    const rollout = platform.podTemplateDigest
      ? new Rollout(
          `${topology.scope}-rollout`,
          {
            config,
            topology,
            platform,
            restAuth,
            poolerAdminUrl,
            readWriteUrl,
            ca,
            // A rotation in this `up`: the pods not yet replaced check the previous REST password.
            // (PgBouncer's admin credential is generated and never rotated by the stack's passwords.)
            previous: pulumi.all([previous ?? pulumi.output(undefined), secrets]).apply(([old, s]) =>
              old && old.restApi !== s.restApi ? { restAuth: `${ROLES.restApi}:${old.restApi}` } : undefined,
            ),
          },
          // HAProxy, not PgBouncer: PgBouncer waits for the Schema, which waits for this Job.
          { parent: this, dependsOn: [...router.haproxy, ...groups] },
        )
      : undefined;

    // The migrations need a superuser and a session of their own: HAProxy's read-write listener,
    // which only routes to the coordinator leader. Applied once the router and every group exist.
    const schema = new Schema(
      `${topology.scope}-schema`,
      {
        config,
        connectionString: coordinatorUrl,
        // PgBouncer's admin console: RECONNECT after a migration changed database settings.
        poolerAdminConnectionString: poolerAdminUrl,
        appPassword: secrets.apply((s) => s.app),
        monitorPassword,
        poolerLookupPassword: pooler.apply((p) => p.lookup),
        ca,
        platform,
        ...(stepTriggerKey ? { triggerKey: stepTriggerKey } : {}),
      },
      // The rollout's Job (kubernetes) waits for nothing the schema makes: the schema waits for it.
      // HAProxy only: PgBouncer (new or changed) starts after the schema (Router.pgbouncerDependsOn).
      { parent: this, dependsOn: [...router.haproxy, ...groups, ...(rollout ? [rollout] : [])] },
    );
    schemaCreated(schema);
    // The PostgreSQL parameters, through Patroni's dynamic configuration, rolled through the groups
    // when a change needs a restart (components/rollout/), from the Pulumi process (docker).
    let rolloutReport: pulumi.Output<unknown> = rollout ? rollout.report : pulumi.output(undefined);
    if (platform.memberAddress) {
      const postgresConfig = new PostgresConfig(
        `${topology.scope}-postgres-config`,
        {
          // Dialled at the container's address; verified against the name its certificate carries.
          groups: topology.groups.map((nodes, group) => ({
            group,
            members: nodes.map((n) => ({ name: n.name, address: platform.memberAddress!(n.name), serverName: addressing.postgres(n).connect })),
          })),
          ca,
          parameters: dynamicParameters(config),
          restAuth,
          poolerAdminUrl,
          readWriteUrl,
        },
        { parent: this, dependsOn: [router, ...groups] },
      );
      rolloutReport = postgresConfig.outcome.apply((outcome) => ({ groups: outcome }));
    }
    // Shards follow the worker groups: onto new ones once registered; off going ones before they go.
    if (scaling) new WorkerRebalance(`${topology.scope}-worker-rebalance`, { connectionString: coordinatorUrl, workerGroups: config.workerGroups, ca }, { parent: this, dependsOn: [schema, ...groups] });
    // Kubernetes: the same as a Job, while the going groups still exist (Pulumi deletes them after it).
    else
      new WorkerScalingStep(
        `${topology.scope}-scaling`,
        { config, topology, platform, secrets, readWriteEndpoint: router.readWriteEndpoint, ca },
        { parent: this, dependsOn: [schema, ...groups] },
      );
    const monitoring = new Monitoring(
      `${topology.scope}-monitoring`,
      { config, topology, platform, grafanaAdminPassword: args.grafanaAdminPassword, certificates: tls, monitorPassword },
      { parent: this, dependsOn: first },
    );

    this.readWriteEndpoint = router.readWriteEndpoint;
    this.readOnlyEndpoint = router.readOnlyEndpoint;
    this.pgbouncerEndpoint = router.pgbouncerEndpoint;
    this.etcdEndpoints = etcd.endpoints;
    this.membersPerGroup = Object.fromEntries(groups.map((g) => [String(g.group), g.members]));
    this.appConnectionString = pulumi.secret(
      secrets.apply(
        (s) => `postgresql://${ROLES.app}:${encodeURIComponent(s.app)}@${router.pgbouncerEndpoint}/${config.database}`,
      ),
    );
    this.caCertificate = ca;
    this.appConnectionStringVerifyFull = pulumi.secret(
      this.appConnectionString.apply((url) => {
        const verified = new URL(url);
        verified.searchParams.set("sslmode", "verify-full");
        return verified.toString();
      }),
    );
    this.schemaVersion = schema.version;
    this.rolloutReport = rolloutReport;
    if (config.benchmarkEnabled) {
      // Through PgBouncer as the application role: what applications see.
      this.benchmarkSummary = postDeployBenchmark(
        `${topology.scope}-benchmark`,
        { config, url: this.appConnectionString, schemaVersion: schema.version, platform, ca },
        // Through PgBouncer: the router's PgBouncer too, which starts after the schema.
        { parent: this, dependsOn: [schema, router] },
      );
    }
    this.prometheusEndpoint = monitoring.prometheusEndpoint;
    this.grafanaEndpoint = monitoring.grafanaEndpoint;
    this.grafanaAdminPassword = monitoring.grafanaAdminPassword;
    this.registerOutputs({
      appConnectionString: this.appConnectionString,
      readWriteEndpoint: this.readWriteEndpoint,
      readOnlyEndpoint: this.readOnlyEndpoint,
      pgbouncerEndpoint: this.pgbouncerEndpoint,
      etcdEndpoints: this.etcdEndpoints,
      membersPerGroup: this.membersPerGroup,
      schemaVersion: this.schemaVersion,
      rolloutReport: this.rolloutReport,
      benchmarkSummary: this.benchmarkSummary,
      prometheusEndpoint: this.prometheusEndpoint,
      grafanaEndpoint: this.grafanaEndpoint,
      grafanaAdminPassword: this.grafanaAdminPassword,
      caCertificate: this.caCertificate,
      appConnectionStringVerifyFull: this.appConnectionStringVerifyFull,
    });
  }

  /**
   * The supplied CA as one secret Output, validated (certificateAuthorityProblems: both keys or
   * neither, a CA certificate valid now, its own RSA key); undefined when neither key is set.
   * Known in preview for config values: a bad CA stops the preview, before any change.
   */
  private suppliedAuthority(given: ClusterArgs["certificateAuthority"]): pulumi.Output<CertificateAuthority> | undefined {
    if (given?.cert === undefined && given?.key === undefined) return undefined;
    return pulumi.secret(
      pulumi.all([given.cert, given.key]).apply(([cert, key]) => {
        const problems = certificateAuthorityProblems(cert, key);
        if (problems.length > 0) throw new Error(`invalid cluster CA (${problems.length} problem${problems.length === 1 ? "" : "s"}):\n  - ${problems.join("\n  - ")}`);
        return { cert: cert!, key: key! };
      }),
    );
  }

  /** Every password as one secret Output: the given one, or a generated one (letters and digits). */
  private clusterSecrets(name: string, given: NonNullable<ClusterArgs["passwords"]>): pulumi.Output<ClusterSecrets> {
    const password = (key: PasswordName): pulumi.Output<string> =>
      pulumi.secret(
        given[key] ?? new random.RandomPassword(`${name}-${key}-password`, { length: 32, special: false }, { parent: this }).result,
      );
    const secrets = pulumi
      .all([password("superuser"), password("replication"), password("rewind"), password("restApi"), password("app")])
      .apply(([superuser, replication, rewind, restApi, app]): ClusterSecrets => {
        // Known in preview for config values: a bad password stops the preview, before any change.
        validatePasswords({ superuser, replication, rewind, restApi, app }, (key) => PASSWORD_CONFIG_KEYS[key]);
        return { superuser, replication, rewind, restApi, app };
      });
    return pulumi.secret(secrets);
  }
}
