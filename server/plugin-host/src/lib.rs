//! wasmtime host for shoal's WebAssembly component plugins
