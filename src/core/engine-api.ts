/**
 * The Engine API's shapes that sandbox writes and reads, in one place: the
 * body of POST /containers/create (decided by core/container-body.ts) and the
 * subset of GET /containers/{id}/json that `inspect` and `ps` read. Types only,
 * so the pure core and the engine layer share them without either importing
 * the other's code.
 */

export interface MountSpec {
  Type: "bind" | "volume" | "tmpfs";
  Source?: string;
  Target: string;
  ReadOnly?: boolean;
  TmpfsOptions?: { SizeBytes?: number; Mode?: number };
  VolumeOptions?: {
    NoCopy?: boolean;
    /** Review mode on Docker: a `local` volume the engine mounts as an overlay (core/container-body.ts). */
    DriverConfig?: { Name: string; Options: Record<string, string> };
  };
}

export interface CreateBody {
  Image: string;
  Cmd: string[];
  Entrypoint?: string[];
  Env: string[];
  WorkingDir: string;
  User: string;
  Tty: boolean;
  OpenStdin: boolean;
  StdinOnce: boolean;
  AttachStdin: boolean;
  AttachStdout: true;
  AttachStderr: true;
  Labels: Record<string, string>;
  HostConfig: HostConfig;
  NetworkDisabled?: boolean;
}

export interface HostConfig {
  Init: true;
  /** The engine removes the container itself as it exits (`docker run --rm`); decided by core/container-body.ts. */
  AutoRemove: boolean;
  Privileged: false;
  Mounts: MountSpec[];
  /** Review mode on Podman only: its overlay bind (`SRC:DST:O,upperdir=..,workdir=..`), which its Mounts cannot express (core/container-body.ts). */
  Binds?: string[];
  CapDrop: ["ALL"];
  CapAdd: string[];
  SecurityOpt: string[];
  ReadonlyRootfs: boolean;
  Tmpfs: Record<string, string>;
  ShmSize: number;
  Memory: number;
  MemorySwap: number;
  NanoCpus?: number;
  PidsLimit: number;
  Ulimits: Array<{ Name: string; Soft: number; Hard: number }>;
  NetworkMode: string;
  /** `none`: the engine keeps no copy of the output on the host (attach still streams it); core/plan.ts. */
  LogConfig?: { Type: string; Config: Record<string, string> };
  /** DNS servers for the engine's resolver; egress runs point it at the gateway (core/container-body.ts). */
  Dns?: string[];
  /** [rows, columns]: engines on API 1.42+ size the TTY before the command starts. */
  ConsoleSize?: [number, number];
}

/** The subset of GET /containers/{id}/json that sandbox reads. */
export interface ContainerDetails {
  Id: string;
  Name: string;
  Created: string;
  Path: string;
  Args: string[];
  State: {
    Status: string;
    Running: boolean;
    ExitCode: number;
    OOMKilled: boolean;
    Error?: string;
    StartedAt?: string;
    FinishedAt?: string;
    /** The container's first process, as the engine's host sees it (0 when not running). */
    Pid?: number;
  };
  Config: {
    Image: string;
    Cmd?: string[] | null;
    Entrypoint?: string[] | null;
    Env?: string[] | null;
    Labels?: Record<string, string> | null;
    User?: string;
    WorkingDir?: string;
    Tty?: boolean;
  };
  HostConfig: Record<string, unknown> & {
    CapAdd?: string[] | null;
    CapDrop?: string[] | null;
    SecurityOpt?: string[] | null;
    ReadonlyRootfs?: boolean;
    Memory?: number;
    MemorySwap?: number;
    NanoCpus?: number;
    PidsLimit?: number | null;
    NetworkMode?: string;
    Init?: boolean | null;
  };
  Mounts?: Array<{ Type: string; Source?: string; Destination: string; RW: boolean; Name?: string }>;
  Image: string;
}

/**
 * POST /containers/create as the Engine API itself defines it: everything but
 * the image is optional. sandbox's own runs always send a full `CreateBody`;
 * tests and helpers may create plainer containers.
 */
export type EngineCreateBody = CreateBody | (Partial<Omit<CreateBody, "HostConfig">> & { Image: string; HostConfig?: Partial<HostConfig> });
