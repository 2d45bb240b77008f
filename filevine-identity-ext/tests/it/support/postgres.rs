//! A real PostgreSQL on loopback: a throwaway cluster made with `initdb` in
//! a temporary directory and run with `pg_ctl`, as the `postgres` user when
//! the tests run as root (both refuse root). Password authentication
//! (scram-sha-256), TCP on 127.0.0.1 only, `fsync` off.
//!
//! The server runs under a small shell that stops it when this test
//! binary's end of a pipe closes, so a cluster shared through a static
//! (started once per test binary) does not outlive the binary.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;

pub const PASSWORD: &str = "pg-test-password";

/// One PostgreSQL cluster.
pub struct Postgres {
    pub port: u16,
    data: PathBuf,
    bin: PathBuf,
    _dir: tempfile::TempDir,
    _shell: Child,
    _tie: Option<ChildStdin>,
}

/// The directory of `initdb` and `pg_ctl`: on PATH, else the Debian
/// package's `/usr/lib/postgresql/<version>/bin`.
fn bin_dir() -> PathBuf {
    if let Ok(path) = std::env::var("PATH") {
        for dir in std::env::split_paths(&path) {
            if dir.join("initdb").exists() && dir.join("pg_ctl").exists() {
                // The real directory (PATH may hold links to it): psql too.
                if let Some(real) =
                    std::fs::canonicalize(dir.join("initdb")).ok().and_then(|p| p.parent().map(Path::to_path_buf))
                {
                    return real;
                }
                return dir;
            }
        }
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|dirs| dirs.flatten().map(|d| d.path().join("bin")).filter(|b| b.join("initdb").exists()).collect())
        .unwrap_or_default();
    versions.sort();
    versions.pop().expect("no initdb: install PostgreSQL (apt-get install postgresql)")
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// `program args…`, as the `postgres` user when this process is root.
fn as_owner(program: &Path) -> Command {
    if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Postgres {
    /// One cluster for the whole test binary.
    pub fn shared() -> &'static Postgres {
        static SHARED: OnceLock<Postgres> = OnceLock::new();
        SHARED.get_or_init(Postgres::start)
    }

    /// A new cluster of its own (for a test that restarts it).
    pub fn start() -> Postgres {
        let bin = bin_dir();
        let dir = tempfile::tempdir().unwrap();
        if is_root() {
            std::os::unix::fs::chown(dir.path(), Some(postgres_uid()), None).unwrap();
        }
        let data = dir.path().join("data");
        let password_file = dir.path().join("password");
        std::fs::write(&password_file, PASSWORD).unwrap();
        if is_root() {
            std::os::unix::fs::chown(&password_file, Some(postgres_uid()), None).unwrap();
        }
        let init = as_owner(&bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "--auth=scram-sha-256", "--no-sync", "--encoding=UTF8"])
            .arg(format!("--pwfile={}", password_file.display()))
            .output()
            .expect("cannot run initdb");
        assert!(init.status.success(), "initdb failed: {}", String::from_utf8_lossy(&init.stderr));
        let port = free_port();
        let options = format!(
            "-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c fsync=off -c full_page_writes=off",
            dir.path().display()
        );
        let pg_ctl = bin.join("pg_ctl");
        // Started, then stopped when this binary's end of stdin closes.
        let script = r#"pg_ctl="$1"; data="$2"; log="$3"; opts="$4"
"$pg_ctl" -D "$data" -l "$log" -o "$opts" -w start >/dev/null 2>&1; echo "started $?"
read _; "$pg_ctl" -D "$data" -m immediate stop >/dev/null 2>&1"#;
        let mut shell = as_owner(Path::new("/bin/sh"))
            .arg("-c")
            .arg(script)
            .arg("sh")
            .arg(&pg_ctl)
            .arg(&data)
            .arg(dir.path().join("server.log"))
            .arg(&options)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start the pg_ctl shell");
        let mut line = String::new();
        BufReader::new(shell.stdout.take().unwrap()).read_line(&mut line).unwrap();
        assert_eq!(
            line.trim(),
            "started 0",
            "PostgreSQL did not start: {}",
            std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default()
        );
        let tie = shell.stdin.take();
        Postgres { port, data, bin, _dir: dir, _shell: shell, _tie: tie }
    }

    /// A URL to a database of its own (created now), so tests sharing the
    /// cluster never see each other's tables.
    pub fn database(&self, name: &str) -> String {
        self.sql(&format!("CREATE DATABASE \"{name}\""));
        format!("postgres://postgres:{PASSWORD}@127.0.0.1:{}/{name}", self.port)
    }

    /// Runs `sql` with psql; its unaligned output.
    pub fn sql_in(&self, database: &str, sql: &str) -> String {
        let output = as_owner(&self.bin.join("psql"))
            .env("PGPASSWORD", PASSWORD)
            .args(["-h", "127.0.0.1", "-U", "postgres", "-At", "-v", "ON_ERROR_STOP=1"])
            .args(["-p", &self.port.to_string(), "-d", database, "-c", sql])
            .output()
            .expect("cannot run psql");
        assert!(output.status.success(), "{sql}: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    pub fn sql(&self, sql: &str) -> String {
        self.sql_in("postgres", sql)
    }

    /// `pg_ctl restart -m fast`: connections are cut, the server is back
    /// when this returns.
    pub fn restart(&self) {
        let output = as_owner(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(&self.data)
            .arg("-l")
            .arg(self.data.with_file_name("server.log"))
            .args(["-m", "fast", "-w", "restart"])
            .stdout(Stdio::null())
            .output()
            .expect("cannot run pg_ctl");
        assert!(output.status.success(), "pg_ctl restart: {}", String::from_utf8_lossy(&output.stderr));
    }
}

fn postgres_uid() -> u32 {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    passwd
        .lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields.first() == Some(&"postgres")).then(|| fields[2].parse().unwrap())
        })
        .expect("no `postgres` user: install PostgreSQL (apt-get install postgresql)")
}

/// A PgBouncer in transaction mode in front of one database: every
/// transaction may run on another server connection, so session state,
/// advisory locks and named prepared statements would break.
pub struct Bouncer {
    pub url: String,
    _dir: tempfile::TempDir,
    _shell: Child,
    _tie: Option<ChildStdin>,
}

impl Postgres {
    /// PgBouncer (transaction pooling, two server connections) for
    /// `database`; `None` when it is not installed.
    pub fn bouncer(&self, database: &str) -> Option<Bouncer> {
        let program = ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"].into_iter().find(|p| Path::new(p).exists())?;
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let ini = dir.path().join("pgbouncer.ini");
        let users = dir.path().join("users.txt");
        std::fs::write(&users, format!("\"postgres\" \"{PASSWORD}\"\n")).unwrap();
        std::fs::write(
            &ini,
            format!(
                "[databases]\npooled = host=127.0.0.1 port={} dbname={database} user=postgres password={PASSWORD}\n\
                 [pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n\
                 auth_type = scram-sha-256\nauth_file = {}\npool_mode = transaction\n\
                 default_pool_size = 2\nmax_client_conn = 100\nlogfile = {}\npidfile = {}\n",
                self.port,
                users.display(),
                dir.path().join("pgbouncer.log").display(),
                dir.path().join("pgbouncer.pid").display(),
            ),
        )
        .unwrap();
        if is_root() {
            for path in [dir.path(), &ini, &users] {
                std::os::unix::fs::chown(path, Some(postgres_uid()), None).unwrap();
            }
        }
        let mut shell = as_owner(Path::new("/bin/sh"))
            .arg("-c")
            .arg(r#""$1" "$2" >/dev/null 2>&1 & echo $!; read _; kill $! 2>/dev/null"#)
            .arg("sh")
            .arg(program)
            .arg(&ini)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start the pgbouncer shell");
        let mut line = String::new();
        BufReader::new(shell.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let tie = shell.stdin.take();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "pgbouncer did not start: {}",
                std::fs::read_to_string(dir.path().join("pgbouncer.log")).unwrap_or_default()
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let url = format!("postgres://postgres:{PASSWORD}@127.0.0.1:{port}/pooled");
        Some(Bouncer { url, _dir: dir, _shell: shell, _tie: tie })
    }
}
