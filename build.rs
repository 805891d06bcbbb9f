//! Compiles `proto/` (the API and its change events) with protox (no `protoc` needed), generates the tonic/prost code and writes the
//! encoded descriptor set to `OUT_DIR/partners_descriptor.bin` for the reflection service; and
//! names the commit built (`PARTNERS_GIT_SHA`, for `partners_build_info`).

use std::{env, fs, path::PathBuf, process::Command};

/// The commit built: `PARTNERS_GIT_SHA` if set (an image build without `.git`), else git's.
fn git_sha() -> String {
    println!("cargo:rerun-if-env-changed=PARTNERS_GIT_SHA");
    if let Ok(sha) = env::var("PARTNERS_GIT_SHA") {
        return sha;
    }
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .map(|s| s.trim().to_owned())
    };
    // A commit or a checkout moves `logs/HEAD`.
    if let Some(log) = git(&["rev-parse", "--git-path", "logs/HEAD"]) {
        println!("cargo:rerun-if-changed={log}");
    }
    git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    println!("cargo:rustc-env=PARTNERS_GIT_SHA={}", git_sha());
    println!("cargo:rerun-if-changed=proto");
    // `embed_migrations!` reads this directory at compile time: a new or edited migration must
    // rebuild the crate (cargo otherwise only watches the files of the package's sources).
    println!("cargo:rerun-if-changed=migrations");

    let mut compiler = protox::Compiler::new(["proto"])?;
    compiler.include_source_info(true).include_imports(true);
    compiler.open_file("partners/v1/partners.proto")?;
    compiler.open_file("partners/v1/webhooks.proto")?;
    compiler.open_file("partners/v1/partner_events.proto")?;
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
