//! What one SQLite statement costs in CPU through the store's lender, with the process on
//! every core and then confined to one (`cpus`, src/server.rs). sqlx runs each SQLite
//! connection on a thread of its own and hands it every statement; the hand-off wakes that
//! thread and then the caller again, and on a virtual machine a wake-up across cores costs
//! far more than the statement. CPU time, not wall time: the process's CPU clock, every thread counted.
//!
//! `cargo bench --bench statements`

use std::time::Duration;
use virtual_window::store::sqlite::SqliteStore;

/// This process's CPU seconds so far (all its threads), to the nanosecond.
fn cpu_secs() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec for the call to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Medians over five rounds of CPU-µs per `SELECT 1` and per autocommitted `INSERT`.
fn measure(label: &str) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("b.db").display());
        let lend = SqliteStore::lender(&url, 4, Duration::from_secs(5)).expect("lender");
        sqlx::query("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER)")
            .execute(&lend)
            .await
            .expect("table");
        let (mut select, mut insert) = (Vec::new(), Vec::new());
        let mut key = 0;
        for _ in 0..5 {
            let n = 4000;
            let t = cpu_secs();
            for _ in 0..n {
                let _: (i64,) = sqlx::query_as("SELECT 1")
                    .fetch_one(&lend)
                    .await
                    .expect("select");
            }
            select.push((cpu_secs() - t) * 1e6 / n as f64);
            let n = 1000;
            let t = cpu_secs();
            for _ in 0..n {
                key += 1;
                sqlx::query("INSERT INTO t (k, v) VALUES ($1, $2)")
                    .bind(format!("k{key}"))
                    .bind(key)
                    .execute(&lend)
                    .await
                    .expect("insert");
            }
            insert.push((cpu_secs() - t) * 1e6 / n as f64);
        }
        println!(
            "{label}: SELECT 1 {:.1} CPU-µs, INSERT (autocommit, WAL) {:.1} CPU-µs (medians of 5)",
            median(select),
            median(insert)
        );
    });
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is ignored, there is one measurement.
    let cpus = virtual_window::server::cpus_allowed();
    measure(&format!("statements/every core (CPUs {cpus})"));
    let first = cpus.split([',', '-']).next().unwrap_or("0").to_owned();
    let one = virtual_window::config::CpuList::parse(&first).expect("a CPU number");
    virtual_window::server::confine_to_cpus(&one).expect("confine");
    measure(&format!("statements/one core (CPU {one})"));
}
