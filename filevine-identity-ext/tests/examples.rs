//! The examples' command-line contract, run as real processes. `cargo test`
//! builds the examples next to the test binaries.

use std::path::PathBuf;
use std::process::{Command, Output};

use filevine_identity_ext::test_server::TestServer;

fn example(name: &str) -> PathBuf {
    // target/<profile>/deps/<this test> → target/<profile>/examples/<name>
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|deps| deps.parent()).unwrap().join("examples");
    dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
}

async fn run(name: &str, env: Vec<(&'static str, String)>) -> Output {
    let path = example(name);
    tokio::task::spawn_blocking(move || {
        let mut command = Command::new(&path);
        command.env_clear().env("PATH", std::env::var_os("PATH").unwrap_or_default());
        for (key, value) in env {
            command.env(key, value);
        }
        command.output().unwrap_or_else(|e| panic!("run {}: {e}", path.display()))
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pat_token_prints_one_authorization_line() {
    let server = TestServer::start().await.unwrap();
    server.add_personal_access_token("fvpat_cli");
    server.add_client("cli-client", "cli-secret");
    let output = run(
        "pat_token",
        vec![
            ("FILEVINE_PAT", "fvpat_cli".into()),
            ("FILEVINE_CLIENT_ID", "cli-client".into()),
            ("FILEVINE_CLIENT_SECRET", "cli-secret".into()),
            ("FILEVINE_SCOPES", "fv.api.gateway.access".into()),
            ("FILEVINE_AUTHORITY", server.url().to_owned()),
        ],
    )
    .await;
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let token = stdout.strip_prefix("Authorization: Bearer ").and_then(|t| t.strip_suffix('\n')).unwrap();
    assert!(server.is_valid_access_token(token), "{stdout}");
    assert_eq!(stdout.lines().count(), 1);
    assert_eq!(server.requests()[0].field("scope"), Some("fv.api.gateway.access"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pat_token_errors_go_to_stderr_with_exit_1() {
    let server = TestServer::start().await.unwrap();
    let cases: Vec<(Vec<(&'static str, String)>, &str)> = vec![
        (vec![], "FILEVINE_PAT is not set"),
        (vec![("FILEVINE_PAT", "x".into()), ("FILEVINE_REGION", "mars".into())], "invalid FILEVINE_REGION \"mars\""),
        (
            vec![("FILEVINE_PAT", "fvpat_unknown".into()), ("FILEVINE_AUTHORITY", server.url().to_owned())],
            "rejected the credentials",
        ),
    ];
    for (env, expected) in cases {
        let output = run("pat_token", env).await;
        assert_eq!(output.status.code(), Some(1));
        assert!(output.stdout.is_empty());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.starts_with("error: ") && stderr.contains(expected), "{expected}: {stderr}");
        assert!(!stderr.contains("fvpat_unknown"), "{stderr}");
    }
}

#[tokio::test]
async fn quickstart_runs_against_the_in_process_test_server_and_prints_no_token() {
    let output = run("quickstart", vec![]).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("started the test server"), "{stdout}");
    assert!(stdout.contains("the same token from the cache"), "{stdout}");
    assert!(stdout.contains("the refreshed token, token requests: 2"), "{stdout}");
    assert!(stdout.contains("token requests: 3"), "{stdout}");
    assert!(!stdout.contains("at_"), "a token value was printed: {stdout}");
}
