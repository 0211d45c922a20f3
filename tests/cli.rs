//! The qbench binary as a user runs it: exit codes, one-line errors, masking, and
//! `--local` servers that leave nothing behind.

mod common;

use common::run_qbench;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn config_shows_env_and_flags_with_password_masked() {
    let out = run_qbench(
        &[
            "config",
            "--workers",
            "7",
            "--pg-url",
            "postgres://flaguser@flaghost:6000/flagdb",
        ],
        &[
            ("PGHOST", "envhost"),
            ("PGPASSWORD", "sup3r-secret"),
            ("PGDATABASE", "envdb"),
            ("QBENCH_VALKEY_URL", "redis://:vk-secret@vkhost:6390"),
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    assert!(s.contains("host = \"flaghost\""), "{s}");
    assert!(s.contains("port = 6000"), "{s}");
    assert!(s.contains("database = \"flagdb\""), "{s}");
    assert!(s.contains("num_workers = 7"), "{s}");
    assert!(s.contains("url = \"redis://:***@vkhost:6390\""), "{s}");
    assert!(s.contains("password = \"***\""), "{s}");
    assert!(
        !s.contains("sup3r-secret") && !s.contains("vk-secret"),
        "{s}"
    );
}

#[test]
fn bad_config_exits_2_with_one_line_naming_the_key() {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("bad.toml");
    for (toml, key) in [
        ("[benchmark]\nproduction_rate = 0\n", "production_rate"),
        ("[benchmark]\nnum_workers = 0\n", "num_workers"),
        ("[benchmark]\nnum_workers = \"x\"\n", "num_workers"),
        ("[benchmark]\nturbo = true\n", "turbo"),
    ] {
        std::fs::write(&file, toml).expect("write");
        let out = run_qbench(&["--config", file.to_str().expect("utf8"), "config"], &[]);
        assert_eq!(out.status.code(), Some(2), "{toml}");
        let err = text(&out.stderr);
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
        assert!(err.contains(key), "{toml}: {err}");
        assert!(
            out.stdout.is_empty(),
            "nothing on stdout: {}",
            text(&out.stdout)
        );
    }
    let out = run_qbench(&["--config", "/no/such/file.toml", "config"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("/no/such/file.toml"));
    let out = run_qbench(&["--rate", "-3", "config"], &[]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn bad_flags_get_one_line_that_points_at_the_right_help() {
    for (args, needle, help) in [
        (
            &["produce", "--queue", "skip_locked", "--duration", "-1"][..],
            "unexpected argument '-1'",
            "qbench produce --help",
        ),
        (&["work"][..], "--queue <QUEUE>", "qbench work --help"),
        (&["--bogus"][..], "'--bogus'", "qbench --help"),
        (
            &["produce", "postgres://u:pw-Secret9@h/db"][..],
            "postgres://u:***@h/db",
            "qbench produce --help",
        ),
    ] {
        let out = run_qbench(args, &[]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
        assert!(
            err.contains(needle) && err.contains(help),
            "{args:?}: {err}"
        );
        assert!(!err.contains("pw-Secret9"), "{err}");
    }
    let out = run_qbench(&["produce", "--help"], &[]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains("--rate"), "help still prints");
}

#[test]
fn unreachable_server_and_unknown_queue_exit_2_without_the_password() {
    let out = run_qbench(
        &[
            "setup-schema",
            "--pg-url",
            "postgres://u:hunter22@127.0.0.1:1/db",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("127.0.0.1:1") && err.contains("running"),
        "{err}"
    );
    assert!(!err.contains("hunter22"), "{err}");
    let out = run_qbench(&["setup-schema", "--queue", "rabbitmq"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("rabbitmq"));
}

#[test]
fn local_setup_schema_twice_leaves_no_process_behind() {
    let sandbox = common::Sandbox::new();
    for _ in 0..2 {
        let out = sandbox
            .qbench()
            .args(["--local", "setup-schema", "--queue", "all"])
            .output()
            .expect("run qbench");
        assert!(out.status.success(), "{}", text(&out.stderr));
        let s = text(&out.stdout);
        for q in [
            "skip_locked",
            "delete_returning",
            "partitioned",
            "valkey_streams",
        ] {
            assert!(s.contains(&format!("{q}: ")), "{s}");
        }
    }
    // Servers are stopped before qbench exits.
    sandbox.assert_clean();
}

/// Completions and man pages come from the parser's own definitions; `--version` names
/// the commit the binary was built from.
#[test]
fn completions_man_page_and_version_come_from_the_binary() {
    for shell in ["bash", "zsh", "fish"] {
        let o = run_qbench(&["completions", shell], &[]);
        assert!(o.status.success(), "{}", text(&o.stderr));
        let s = text(&o.stdout);
        assert!(
            s.contains("run-suite") && s.contains("spike-factor"),
            "{shell}: {s}"
        );
    }
    let o = run_qbench(&["completions", "tcsh"], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));

    let o = run_qbench(&["man"], &[]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let page = text(&o.stdout);
    assert!(
        page.starts_with(".ie") || page.contains(".TH qbench"),
        "{page}"
    );
    assert!(page.contains("run\\-suite"), "{page}");
    let dir = tempfile::tempdir().expect("dir");
    let o = run_qbench(&["man", "--out", dir.path().to_str().expect("utf8")], &[]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let sub = std::fs::read_to_string(dir.path().join("qbench-run-suite.1")).expect("page");
    assert!(sub.contains("\\-\\-scenarios"), "{sub}");

    let o = run_qbench(&["--version"], &[]);
    let v = text(&o.stdout);
    assert!(
        v.starts_with(&format!("qbench {} (commit ", env!("CARGO_PKG_VERSION"))),
        "{v}"
    );
    // Built from this checkout: the commit it names is HEAD's.
    let head = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("git");
    assert!(head.status.success(), "the tests run from a git checkout");
    let head = text(&head.stdout);
    assert!(v.contains(head.trim()), "{v} vs {head}");
}

#[test]
fn count_and_duration_together_are_refused_before_any_server() {
    let o = run_qbench(
        &[
            "produce",
            "--queue",
            "skip_locked",
            "--count",
            "5",
            "--duration",
            "3",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("'--count <N>' cannot be used with '--duration <S>'"));
}
