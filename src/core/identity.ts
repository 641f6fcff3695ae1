import { CONTAINER_HOME } from "./plan.ts";

/**
 * Any uid has a name and a home. The run's uid (the caller's, by default) is
 * rarely in the image's /etc/passwd, and then `whoami`, Python's getpass,
 * Node's os.userInfo(), Go's user.Current() and git's identity detection
 * fail. The image's own files are kept and the run's user added (or, when the
 * uid is there already, its home pointed at the writable $HOME); sandbox
 * mounts the result read-only over /etc/passwd and /etc/group.
 */

export interface Identity {
  passwd: string;
  group: string;
  /** The run user's name: $USER and $LOGNAME. */
  user: string;
}

export const DEFAULT_NAME = "sandbox";

type Row = string[];

function rows(text: string | undefined): Row[] {
  return (text ?? "")
    .split("\n")
    .filter((line) => line.trim() !== "" && !line.startsWith("#"))
    .map((line) => line.split(":"));
}

function freeName(taken: ReadonlySet<string>, id: string): string {
  return taken.has(DEFAULT_NAME) ? `${DEFAULT_NAME}-${id}` : DEFAULT_NAME;
}

/**
 * The image's passwd and group (undefined when the image has none) with the
 * run's `uid:gid`. Undefined when the user is not numeric (a name must
 * already be in the image, or the engine refuses it).
 */
export function identityFor(user: string, imagePasswd: string | undefined, imageGroup: string | undefined): Identity | undefined {
  const [uid, gidText] = user.split(":");
  if (uid === undefined || !/^\d+$/.test(uid) || (gidText !== undefined && !/^\d+$/.test(gidText))) return undefined;
  const gid = gidText ?? uid;

  const groups = rows(imageGroup);
  const groupNames = new Set(groups.map((g) => g[0] ?? ""));
  const group = groups.find((g) => g[2] === gid);
  const groupName = group?.[0] ?? freeName(groupNames, gid);
  const groupRows = group ? groups : [...groups, [groupName, "x", gid, ""]];

  const people = rows(imagePasswd);
  const names = new Set(people.map((p) => p[0] ?? ""));
  const own = people.find((p) => p[2] === uid);
  const name = own?.[0] ?? freeName(names, uid);
  const passwdRows = own
    ? people.map((p) => (p === own ? [p[0] ?? name, p[1] ?? "x", uid, p[3] ?? gid, p[4] ?? "", CONTAINER_HOME, p[6] || "/bin/sh"] : p))
    : [...people, [name, "x", uid, gid, name, CONTAINER_HOME, "/bin/sh"]];

  const text = (list: Row[]) => `${list.map((r) => r.join(":")).join("\n")}\n`;
  return { passwd: text(passwdRows), group: text(groupRows), user: name };
}
