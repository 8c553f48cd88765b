// The one interface the components call to run processes. A platform turns a "workload group"
// (the members of one HA group, one etcd cluster, one router process) into its own resources:
// docker containers, or kubernetes pods (a StatefulSet per HA group, per-member files selected by pod name).
// Nothing here names a provider package, so the components never depend on one.
import type * as pulumi from "@pulumi/pulumi";
import type { HostNaming } from "../render/container.ts";

/** A file delivered into a member before its process starts. */
export interface WorkloadFile {
  /** Absolute path inside the container or pod. */
  path: string;
  content: string;
  /** Holds a password: delivered with mode 0600, never world-readable. */
  secret: boolean;
  /** A script the process runs (mode 0700 when secret, 0755 otherwise). */
  executable?: boolean;
}

/** One process of a group, with its own identity and its own rendered files. */
export interface WorkloadMember {
  /** Unique name; also the member's hostname on the cluster network (its stable address). */
  name: string;
  /** The full command line; replaces the image's entrypoint. */
  command: string[];
  /** Environment variables (never passwords: those travel in secret files). */
  env?: Record<string, string>;
  /**
   * The member's files. An Output, because rendered contents that hold passwords are secret Outputs:
   * the platform keeps them secret all the way into its resources.
   */
  files: pulumi.Input<WorkloadFile[]>;
}

/** A port a group listens on. */
export interface WorkloadPort {
  /** Port inside the container or pod. */
  port: number;
  /** Port to publish on the host (docker); omitted for ports only the cluster network uses. */
  publishedPort?: number;
  /** docker: the host address the published port is bound to; omitted: every interface (0.0.0.0). */
  publishAddress?: string;
}

/** A set of identical processes that differ only by name and files: one HA group, etcd, or a router process. */
export interface WorkloadGroup {
  /** Group name (docker: a label; kubernetes: the StatefulSet and its headless Service). */
  name: string;
  image: pulumi.Input<string>;
  members: WorkloadMember[];
  ports: WorkloadPort[];
  /** Where each member's persistent volume is mounted; omitted for stateless processes. */
  volumePath?: string;
  /** Command run inside the member; exit status 0 means healthy. */
  healthcheck: string[];
  /** Seconds the process may take to start before a failing healthcheck counts. */
  startSeconds?: number;
  /** CPU and memory of each member; omitted for the small router and etcd processes. */
  resources?: { cpus: number; memoryMb: number };
  /**
   * Size of the members' /dev/shm, MiB (PostgreSQL's dynamic shared memory: parallel index builds);
   * omitted: the platform's default (64 MiB on Docker).
   */
  sharedMemoryMb?: number;
  /** Run as this numeric user and group (and own the delivered files); omitted: the image's user. */
  runAs?: { uid: number; gid: number };
  /**
   * Replace the members one at a time (a Patroni group): each member's resource is declared only
   * when its turn comes. Docker: a container whose inputs changed is replaced in its turn (replicas
   * first, a switchover, the former leader last); Kubernetes ignores it (kubernetesRollout).
   */
  turns?: MemberTurns;
  /**
   * false: the image has no shell (etcd's distroless image). Kubernetes then installs the member's
   * files with an init container of the database image and runs `command` itself (the members'
   * commands must differ only by their names); omitted: the image has /bin/sh.
   */
  shell?: false;
}

/** The turns of a group's members (components/rolling-replacement.ts). */
export interface MemberTurns {
  /** Key of the fingerprints of the members' inputs (a cluster secret; the fingerprints are HMACs under it). */
  key: pulumi.Input<string>;
  /**
   * Resolves when `member`'s resource may be declared with the inputs whose fingerprint is
   * `fingerprint`; rejects when the group's roll fails.
   */
  turn(member: string, fingerprint: string): Promise<void>;
}

/** Resource options a group's resources get: the component as parent, and what must exist first. */
export interface DeployOptions {
  parent: pulumi.Resource;
  dependsOn?: pulumi.CustomResourceOptions["dependsOn"];
}

/**
 * The deploy steps: the project's own code that needs the database once the cluster is up. "rollout"
 * exists where a changed pod template restarts no Patroni member by itself (kubernetes); "rotation"
 * (ALTER ROLE for changed passwords, components/rotation/step.ts) and "scaling" (rebalance onto new
 * worker groups, drain the going ones, components/scaling/step.ts) where the Pulumi process cannot
 * reach the database (kubernetes; docker runs the same code in its dynamic resources).
 */
export type DeployStepName = "schema" | "benchmark" | "rollout" | "rotation" | "scaling";

/**
 * A deploy step: the schema migrations (components/schema-apply.ts) or the post-deploy benchmark
 * (components/benchmark-step.ts), with the input the same function takes in either place.
 */
export interface DeployStep {
  /** Name stem of the step's resources and objects (a DNS label), e.g. `dpc-schema`. */
  name: string;
  step: DeployStepName;
  /**
   * The step's input as JSON (connection URLs with passwords included): the platform keeps it
   * secret, in the state and on the way to the step.
   */
  input: pulumi.Input<Record<string, unknown>>;
  /** A digest of what makes the step run again (never a password itself); an unchanged trigger runs nothing. */
  trigger: pulumi.Input<string>;
  /** Longest the step may take, seconds, start-up and its own retries included. */
  timeoutSeconds: number;
  /**
   * The Patroni groups whose members the step restarts (the rollout): the Kubernetes platform lets
   * the step's pods read those StatefulSets, delete those pods and reach the members' Patroni REST
   * API, and no other step's pods.
   */
  restarts?: { statefulSet: string; members: string[] }[];
  /**
   * StatefulSets the step may scale down to no pod (the scaling step: worker groups that go, once
   * drained): the Kubernetes platform lets the step's pods read them and patch their scale, and no
   * other step's. Names of sets the program no longer declares: they exist until Pulumi deletes them.
   */
  scales?: string[];
}

export interface Platform {
  /** How members address each other; the renderers put these names into every config file. */
  readonly hostNaming: HostNaming;
  /** The database image (PostgreSQL + Citus + Patroni + vector extension) built from images/. */
  databaseImage(): pulumi.Input<string>;
  /** Declares the group's resources; returns them (the components use them only for dependencies). */
  deployGroup(group: WorkloadGroup, opts: DeployOptions): pulumi.Resource[];
  /** Where clients outside the cluster network reach a member's published port, as host:port. */
  clientEndpoint(member: string, port: WorkloadPort): string;
  /**
   * Runs a deploy step where the database is, when the Pulumi process cannot reach the cluster's
   * addresses (kubernetes: a Job in the cluster), and returns its result (the JSON the step's
   * function returned). undefined: the cluster's endpoints are reachable from the Pulumi process
   * (docker: published ports), and the caller runs the step there.
   */
  runDeployStep(step: DeployStep, opts: DeployOptions): pulumi.Output<Record<string, unknown>> | undefined;
  /**
   * A digest of the pod template of a group's members where a changed template restarts none of
   * them by itself (kubernetes: Patroni StatefulSets updating OnDelete), so that the rollout step runs
   * when it changes; undefined where the platform replaces members itself (docker).
   */
  podTemplateDigest?(group: string): pulumi.Output<string> | undefined;
  /**
   * The address at which the machine running `pulumi up` reaches a deployed member's own ports (its
   * Patroni REST API), for the rolling changes (components/postgres-config.ts); absent where it
   * cannot (Kubernetes pods from outside the cluster).
   */
  memberAddress?(member: string): pulumi.Input<string>;
}
