//! Compiles `proto/` with protox (no `protoc` needed), generates the tonic/prost code and writes the
//! encoded descriptor set to `OUT_DIR/partners_descriptor.bin` for the reflection service.

use std::{env, fs, path::PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    println!("cargo:rerun-if-changed=proto");
    // `embed_migrations!` reads this directory at compile time: a new or edited migration must
    // rebuild the crate (cargo otherwise only watches the files of the package's sources).
    println!("cargo:rerun-if-changed=migrations");

    let mut compiler = protox::Compiler::new(["proto"])?;
    compiler.include_source_info(true).include_imports(true);
    compiler.open_file("partners/v1/partners.proto")?;
    fs::write(
        out_dir.join("partners_descriptor.bin"),
        compiler.encode_file_descriptor_set(),
    )?;

    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(compiler.file_descriptor_set())?;
    Ok(())
}
