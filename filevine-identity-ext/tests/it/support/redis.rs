//! A real `redis-server` (the Debian package) on a free loopback port,
//! without persistence, stopped when dropped.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Redis {
    pub url: String,
    child: Child,
}

impl Redis {
    pub fn start() -> Redis {
        // A free port: bind, read, release. Another process could take it
        // in between; the readiness check below would then fail loudly.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start redis-server (apt-get install redis-server): {e}"));
        let url = format!("redis://127.0.0.1:{port}/0");
        // Ready once it answers PING (it starts in a few milliseconds).
        let client = redis::Client::open(url.as_str()).unwrap();
        for _ in 0..500 {
            if let Ok(mut connection) = client.get_connection()
                && redis::cmd("PING").query::<String>(&mut connection).is_ok()
            {
                return Redis { url, child };
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("redis-server did not start on port {port}");
    }

    /// A raw value, for checking what the store wrote.
    pub fn hget(&self, key: &str, field: &str) -> Option<Vec<u8>> {
        let mut connection = redis::Client::open(self.url.as_str()).unwrap().get_connection().unwrap();
        redis::cmd("HGET").arg(key).arg(field).query(&mut connection).unwrap()
    }

    /// The keys matching `pattern`.
    pub fn keys(&self, pattern: &str) -> Vec<String> {
        let mut connection = redis::Client::open(self.url.as_str()).unwrap().get_connection().unwrap();
        redis::cmd("KEYS").arg(pattern).query(&mut connection).unwrap()
    }

    /// Whether `key` exists.
    pub fn exists(&self, key: &str) -> bool {
        let mut connection = redis::Client::open(self.url.as_str()).unwrap().get_connection().unwrap();
        redis::cmd("EXISTS").arg(key).query::<i64>(&mut connection).unwrap() == 1
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
