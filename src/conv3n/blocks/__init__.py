"""Built-in block packages. Each imports `conv3n.sdk` and libraries only, never the engine."""
