// Types of mutation/areas.mjs (plain JavaScript, so that stryker.config.mjs can import it).
export declare const CORE: readonly string[];
export declare const AREAS: Readonly<Record<string, { readonly files: readonly string[]; readonly what: string; readonly tests?: readonly string[] }>>;
