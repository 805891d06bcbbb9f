//! The README's grpcurl and curl examples, run as written against a server loaded by `seed-demo`.

use std::process::Command;

use crate::support::*;

fn block_after(readme: &str, heading: &str) -> String {
    let section = &readme[readme
        .find(heading)
        .unwrap_or_else(|| panic!("README lacks {heading}"))..];
    let start = section.find("```sh").expect("code block") + "```sh".len();
    let end = start + section[start..].find("```").expect("block end");
    section[start..end].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readme_examples_work_as_written() {
    let t = TestApp::start().await;
    let out = Command::new(env!("CARGO_BIN_EXE_partners"))
        .arg("seed-demo")
        .env("DATABASE_URL", &t.db.url)
        .env("RUST_LOG", "warn")
        .output()
        .expect("seed-demo");
    assert!(out.status.success());
    let assignments = String::from_utf8(out.stdout).expect("utf-8");
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README");
    let http = t.http().trim_start_matches("http://").to_owned();
    for heading in ["## grpcurl", "## REST (curl)", "## Change events"] {
        let script = block_after(&readme, heading)
            .replace("127.0.0.1:50051", &t.grpc_addr().to_string())
            .replace("127.0.0.1:8080", &http);
        let out = Command::new("bash")
            .arg("-c")
            .arg(format!("set -euo pipefail\n{assignments}\n{script}"))
            .output()
            .expect("bash");
        assert!(
            out.status.success(),
            "{heading} examples failed:\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
