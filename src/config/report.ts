import type { DeclarationTable, DefaultFacts } from "./declare.ts";
import type { Resolved } from "./resolve.ts";
import { WORKSPACE_FILE_NAME } from "./values.ts";
import { DEFAULT_SOURCE } from "./settings.ts";

/** One row of `sandbox config show`: a config key, its value as people read it, and its source. */
export interface SettingRow {
  key: string;
  value: string;
  source: string;
}

/**
 * Every setting a config file can set, in declaration order. A setting only
 * `.sandbox.yml` can set is named by its key there. Settings hold names and
 * limits, never secret values (env values from a repository are shown by name).
 */
export function settingRows<Table extends DeclarationTable>(table: Table, settings: Resolved<Table>, host: DefaultFacts = { uid: undefined, gid: undefined, env: {}, homeDir: "~" }): SettingRow[] {
  const rows: SettingRow[] = [];
  for (const [name, declaration] of Object.entries(table)) {
    const key = declaration.config?.key ?? (declaration.workspace ? `${WORKSPACE_FILE_NAME}: ${declaration.workspace.key}` : undefined);
    if (key === undefined) continue;
    const setting = settings[name as keyof Table];
    const value = setting.value;
    const shown =
      declaration.describeDefault !== undefined && setting.source === DEFAULT_SOURCE
        ? typeof declaration.describeDefault === "function"
          ? declaration.describeDefault(host)
          : declaration.describeDefault
        : value === undefined
          ? "-"
          : declaration.show
            ? declaration.show(value)
            : Array.isArray(value)
              ? value.length
                ? value.join(", ")
                : "[]"
              : String(value);
    rows.push({ key, value: shown, source: setting.source });
  }
  return rows;
}
