"""custom/code in JavaScript and TypeScript: runtime discovery (`runtime`), worker processes
(`worker` and its JavaScript side `worker.mjs`), pools (`pool`), npm environments (`npm`), error
reports (`failures`) and one call (`execute`)."""
