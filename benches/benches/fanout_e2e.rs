//! End-to-end fan-out over loopback: the bench server (`sse_bench_server`) through each
//! adapter's front end, against each framework's own SSE in the same run (axum's `Sse` +
//! `tokio::sync::broadcast`; actix-web-lab's `sse`), as the bench protocol
//! (`benches/bench-server/PROTOCOL.md`) part 1 describes.
//!
//! `cargo bench -p sse-benches --bench fanout_e2e`
//!
//! Each server runs as a child process (this binary, re-executed with `FANOUT_E2E_SERVER` set)
//! pinned to core 0 with `taskset -c 0`, on a current-thread runtime; the load generator runs
//! here, pinned to core 1, on a current-thread runtime too. Per run, on a fresh server:
//!
//! 1. **idle**: the server's resident memory (`VmRSS`) is read, `C` subscribers connect
//!    (hand-written HTTP/1.1 `GET /sub/bench`), every one waits for its `: ok`, and after a
//!    short settle the memory is read again: (after − before) / C = KiB per idle connection;
//! 2. **burst**: one `POST /pub/bench?n=N&size=SIZE`; every subscriber reads (chunked transfer
//!    coding undone, events decoded with `sse_core::Decoder`) until it has N events or the time
//!    limit passes. Delivered events/s = all events received / (last event − POST sent);
//!    latency = receive time − the `ts` in the payload; lost = C·N − received. Each event's
//!    `id:` must be the next sequence number and equal the payload's `seq` (counted as errors
//!    otherwise). The share of the burst's wall time that the server and the load generator
//!    spent on their cores (`/proc/PID/task/*/schedstat`) is printed too: the side near 100 % is the
//!    bottleneck;
//! 3. **after the burst**: the same connections, idle again: KiB per connection once more (what
//!    a connection keeps after a burst).
//!
//! The runs alternate between servers; the table shows the median of each column.
//!
//! `sse_core::Decoder` allocates three strings per event, which caps this load generator at
//! about 4 M events/s on one core, below what the bench server delivers. `PARSER=fast`
//! swaps in a line scanner that allocates nothing per event (it understands only the shape
//! these servers send); use it to see how far the server goes.
//!
//! Environment: `C` (1000), `N` (1000), `SIZE` (100), `RUNS` (3), `LIMIT` (seconds, 30),
//! `SERVERS` (default `sse-raw,sse-axum,axum,sse-actix,actix-lab,sse-hyper`; also `sse`, which
//! reads `FRONTEND`, and `cluster`: a `redis-server` and three `sse` nodes sharing the server's
//! core, the burst POSTed to the first node and the subscribers spread over the other two, the
//! memory and CPU of all four processes counted), `PARSER` (`decoder`, `fast`); the `sse*`
//! servers also read `POLICY`, `QUEUE`, `HISTORY` like `bench-server`. Without
//! `--bench` in its arguments (as under `cargo test --benches`) it does nothing.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::error::Error;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitCode, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sse_bench_server::{self as bench_server, actix_lab, axum_broadcast, Config, Frontend};
use sse_core::Decoder;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Notify;

type Res<T> = Result<T, Box<dyn Error>>;

const SERVER_ENV: &str = "FANOUT_E2E_SERVER";
/// Read buffer shared by all subscribers of the load generator (one thread).
const READ_BUF: usize = 256 << 10;

fn main() -> ExitCode {
    if let Ok(kind) = std::env::var(SERVER_ENV) {
        return run_server(&kind);
    }
    if !std::env::args().any(|a| a == "--bench") {
        println!(
            "fanout_e2e: nothing to do without --bench \
             (cargo bench -p sse-benches --bench fanout_e2e)"
        );
        return ExitCode::SUCCESS;
    }
    match orchestrate() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fanout_e2e: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The child process: one server, until killed.
fn run_server(kind: &str) -> ExitCode {
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("fanout_e2e server: {e}");
            return ExitCode::from(2);
        }
    };
    match kind {
        "sse" => bench_server::main_with(kind, move |l| bench_server::serve(l, config)),
        "sse-raw" => bench_server::main_with(kind, move |l| {
            bench_server::serve(l, config.frontend(Frontend::Raw))
        }),
        "sse-hyper" => bench_server::main_with(kind, move |l| {
            bench_server::serve(l, config.frontend(Frontend::Hyper))
        }),
        "sse-axum" => bench_server::main_with(kind, move |l| {
            bench_server::serve(l, config.frontend(Frontend::Axum))
        }),
        "sse-actix" => bench_server::main_with(kind, move |l| {
            bench_server::serve(l, config.frontend(Frontend::Actix))
        }),
        "axum" => bench_server::main_with(kind, axum_broadcast::serve),
        "actix-lab" => bench_server::main_with(kind, actix_lab::serve),
        other => {
            eprintln!(
                "fanout_e2e: unknown server {other:?} \
                 (sse, sse-raw, sse-hyper, sse-axum, sse-actix, axum, actix-lab)"
            );
            ExitCode::from(2)
        }
    }
}

#[derive(Debug, Clone)]
struct Params {
    c: usize,
    n: u64,
    size: usize,
    runs: usize,
    limit: Duration,
    servers: Vec<String>,
    /// Parse with the allocation-free line scanner instead of `sse_core::Decoder`.
    fast: bool,
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> Res<T> {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => v
            .parse()
            .map_err(|_| format!("{name}={v:?} does not parse").into()),
        _ => Ok(default),
    }
}

impl Params {
    fn from_env() -> Res<Params> {
        let servers: String = env_or(
            "SERVERS",
            "sse-raw,sse-axum,axum,sse-actix,actix-lab,sse-hyper".to_owned(),
        )?;
        Ok(Params {
            fast: match env_or("PARSER", "decoder".to_owned())?.as_str() {
                "decoder" => false,
                "fast" => true,
                other => return Err(format!("PARSER={other:?}: expected decoder or fast").into()),
            },
            c: env_or("C", 1000)?,
            n: env_or("N", 1000)?,
            size: env_or("SIZE", 100)?,
            runs: env_or::<usize>("RUNS", 3)?.max(1),
            limit: Duration::from_secs(env_or("LIMIT", 30)?),
            servers: servers
                .split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect(),
        })
    }
}

/// One run's numbers.
#[derive(Debug, Clone, Default)]
struct RunResult {
    events_per_s: f64,
    mib_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    lost: u64,
    errors: u64,
    kib_per_idle: f64,
    /// Server memory per connection once the burst is delivered and the connections idle.
    kib_after_burst: f64,
    post_ms: f64,
    /// CPU time of the server and of the load generator from the POST to the last event, as a
    /// share of that wall time: whichever is near 100 % is the bottleneck.
    server_cpu: f64,
    loadgen_cpu: f64,
}

fn orchestrate() -> Res<()> {
    let p = Params::from_env()?;
    let pinned = have_taskset() && cores() >= 2;
    if pinned {
        // This process (the load generator) on core 1; each server child on core 0.
        let pid = std::process::id().to_string();
        let ok = Command::new("taskset")
            .args(["-a", "-p", "-c", "1", &pid])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("fanout_e2e: warning: could not pin the load generator to core 1");
        }
    } else {
        eprintln!("fanout_e2e: warning: taskset or a second core missing: nothing is pinned");
    }
    println!(
        "fanout_e2e: C={} subscribers, N={} events of SIZE={} bytes, {} runs per server, \
         parsed with {}{}",
        p.c,
        p.n,
        p.size,
        p.runs,
        if p.fast {
            "the line scanner (PARSER=fast)"
        } else {
            "sse_core::Decoder"
        },
        if pinned {
            " (server on core 0, load generator on core 1)"
        } else {
            ""
        }
    );
    let mut results: BTreeMap<String, Vec<RunResult>> = BTreeMap::new();
    for run in 1..=p.runs {
        for kind in &p.servers {
            let r = one_run(kind, &p, pinned)?;
            println!(
                "  run {run} {kind:<10} {:>12} ev/s {:>7.1} MiB/s  p50 {:>7.2} ms  \
                 p99 {:>7.2} ms  max {:>7.2} ms  lost {}  errors {}  \
                 idle {:.2} KiB/conn (after burst {:.2})  POST {:.1} ms  \
                 cpu server {:.0}% loadgen {:.0}%",
                thousands(r.events_per_s),
                r.mib_per_s,
                r.p50_ms,
                r.p99_ms,
                r.max_ms,
                r.lost,
                r.errors,
                r.kib_per_idle,
                r.kib_after_burst,
                r.post_ms,
                r.server_cpu * 100.0,
                r.loadgen_cpu * 100.0,
            );
            results.entry(kind.clone()).or_default().push(r);
        }
    }
    println!();
    println!(
        "{:<10} {:>13} {:>9} {:>8} {:>8} {:>8} {:>8} {:>14} {:>13} {:>14}",
        "server",
        "events/s",
        "MiB/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "lost",
        "KiB/idle conn",
        "after burst",
        "cpu srv/gen %"
    );
    let mut medians = BTreeMap::new();
    for kind in &p.servers {
        let Some(rs) = results.get(kind) else {
            continue;
        };
        let m = RunResult {
            events_per_s: median(rs.iter().map(|r| r.events_per_s)),
            mib_per_s: median(rs.iter().map(|r| r.mib_per_s)),
            p50_ms: median(rs.iter().map(|r| r.p50_ms)),
            p99_ms: median(rs.iter().map(|r| r.p99_ms)),
            max_ms: median(rs.iter().map(|r| r.max_ms)),
            lost: median(rs.iter().map(|r| r.lost as f64)) as u64,
            errors: rs.iter().map(|r| r.errors).sum(),
            kib_per_idle: median(rs.iter().map(|r| r.kib_per_idle)),
            kib_after_burst: median(rs.iter().map(|r| r.kib_after_burst)),
            post_ms: median(rs.iter().map(|r| r.post_ms)),
            server_cpu: median(rs.iter().map(|r| r.server_cpu)),
            loadgen_cpu: median(rs.iter().map(|r| r.loadgen_cpu)),
        };
        println!(
            "{:<10} {:>13} {:>9.1} {:>8.2} {:>8.2} {:>8.2} {:>8} {:>14.2} {:>13.2} {:>14}",
            kind,
            thousands(m.events_per_s),
            m.mib_per_s,
            m.p50_ms,
            m.p99_ms,
            m.max_ms,
            m.lost,
            m.kib_per_idle,
            m.kib_after_burst,
            format!("{:.0}/{:.0}", m.server_cpu * 100.0, m.loadgen_cpu * 100.0)
        );
        medians.insert(kind.clone(), m);
    }
    if let Some(base) = medians.get("axum") {
        for (kind, m) in &medians {
            if kind != "axum" && base.events_per_s > 0.0 {
                println!(
                    "{kind} / axum: {:.1}x events/s, {:.2}x KiB per idle connection",
                    m.events_per_s / base.events_per_s,
                    if base.kib_per_idle > 0.0 {
                        m.kib_per_idle / base.kib_per_idle
                    } else {
                        f64::NAN
                    }
                );
            }
        }
    }
    for (kind, m) in &medians {
        if m.loadgen_cpu > 0.7 && m.loadgen_cpu > m.server_cpu + 0.25 {
            println!(
                "note: {kind}: the load generator was the bottleneck (its core {:.0}% busy, the \
                 server's {:.0}%): {kind}'s numbers are a lower bound{}",
                m.loadgen_cpu * 100.0,
                m.server_cpu * 100.0,
                if p.fast {
                    ""
                } else {
                    "; PARSER=fast parses without sse_core::Decoder's per-event allocations"
                }
            );
        }
    }
    let errors: u64 = medians.values().map(|m| m.errors).sum();
    if errors > 0 {
        println!(
            "warning: {errors} out-of-order, duplicate or mismatched events (see the run lines)"
        );
    }
    Ok(())
}

fn have_taskset() -> bool {
    Command::new("taskset")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn median(it: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = it.collect();
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn thousands(x: f64) -> String {
    let s = format!("{:.0}", x.max(0.0));
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Kills the server child when the run ends, however it ends.
struct ServerChild(Child);

impl Drop for ServerChild {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A child process that is killed when dropped (a `redis-server`).
struct KillOnDrop(Child, Option<std::path::PathBuf>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        if let Some(dir) = self.1.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// What the load generator drives: where it publishes, where its subscribers connect (spread
/// over the list), and the processes whose memory and CPU count as "the server".
struct Target {
    publish: SocketAddr,
    subscribe: Vec<SocketAddr>,
    pids: Vec<u32>,
}

/// Starts this binary as server `kind` (pinned to core 0 when `pinned`) with `env`.
fn spawn_server(kind: &str, env: &[(&str, &str)], pinned: bool) -> Res<(ServerChild, SocketAddr)> {
    let exe = std::env::current_exe()?;
    let mut cmd = if pinned {
        let mut c = Command::new("taskset");
        c.args(["-c", "0"]).arg(&exe);
        c
    } else {
        Command::new(&exe)
    };
    cmd.env(SERVER_ENV, kind)
        .env("PORT", "0")
        .env_remove("BACKPLANE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = ServerChild(cmd.spawn()?);
    let stdout = child.0.stdout.take().ok_or("no stdout")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let addr: SocketAddr = line
        .trim()
        .strip_prefix("listening on http://")
        .ok_or_else(|| format!("{kind}: unexpected first line {line:?}"))?
        .parse()?;
    Ok((child, addr))
}

/// A `redis-server` on a free port in a temporary directory, without persistence, pinned to
/// core 0 with the nodes when `pinned`.
fn spawn_redis(pinned: bool) -> Res<(KillOnDrop, u16)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let dir = std::env::temp_dir().join(format!("fanout-e2e-redis-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut cmd = if pinned {
        let mut c = Command::new("taskset");
        c.args(["-c", "0", "redis-server"]);
        c
    } else {
        Command::new("redis-server")
    };
    cmd.current_dir(&dir)
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ])
        .args(["--appendonly", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let child = KillOnDrop(
        cmd.spawn()
            .map_err(|e| format!("redis-server: {e} (install Debian's redis-server)"))?,
        Some(dir),
    );
    let until = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > until {
            return Err("redis-server did not start".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok((child, port))
}

fn one_run(kind: &str, p: &Params, pinned: bool) -> Res<RunResult> {
    let mut children = Vec::new();
    let mut redis = None;
    let target = if kind == "cluster" {
        // Three nodes sharing one Redis, all on the server's core: publish on A, subscribers
        // spread over B and C.
        let (r, port) = spawn_redis(pinned)?;
        let url = format!("redis://127.0.0.1:{port}");
        let mut addrs = Vec::new();
        let mut pids = vec![r.0.id()];
        for _ in 0..3 {
            let (child, addr) = spawn_server("sse", &[("BACKPLANE", &url)], pinned)?;
            pids.push(child.0.id());
            addrs.push(addr);
            children.push(child);
        }
        redis = Some(r);
        Target {
            publish: addrs[0],
            subscribe: addrs[1..].to_vec(),
            pids,
        }
    } else {
        let (child, addr) = spawn_server(kind, &[], pinned)?;
        let pids = vec![child.0.id()];
        children.push(child);
        Target {
            publish: addr,
            subscribe: vec![addr],
            pids,
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    let res = local.block_on(&rt, load(&target, p));
    drop(children);
    drop(redis);
    res.map_err(|e| format!("{kind}: {e}").into())
}

/// Resident memory of all `pids`, in KiB.
fn rss_all(pids: &[u32]) -> Res<u64> {
    pids.iter().map(|&p| rss_kib(p)).sum()
}

/// CPU time of all `pids`, in ns.
fn cpu_all(pids: &[u32]) -> u64 {
    pids.iter().map(|&p| cpu_ns(p)).sum()
}

fn rss_kib(pid: u32) -> Res<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| "no VmRSS".into())
}

/// Time every thread of `pid` has spent on a CPU (`/proc/PID/task/*/schedstat`), in ns: a
/// server may run its work on a thread other than the main one (actix's system thread).
fn cpu_ns(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .filter_map(Result::ok)
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

fn wall_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// What the subscribers share with the driver.
#[derive(Default)]
struct Shared {
    subscribed: Cell<usize>,
    finished: Cell<usize>,
    notify: Notify,
}

/// One subscriber's outcome.
#[derive(Default)]
struct SubStats {
    received: u64,
    errors: u64,
    bytes: u64,
    last: Option<Instant>,
    latencies: Vec<u64>,
    failure: Option<String>,
}

async fn load(target: &Target, p: &Params) -> Res<RunResult> {
    let shared = Rc::new(Shared::default());
    let rss_before = rss_all(&target.pids)?;
    let mut stats = Vec::with_capacity(p.c);
    let mut tasks = Vec::with_capacity(p.c);
    for i in 0..p.c {
        let addr = target.subscribe[i % target.subscribe.len()];
        let st = Rc::new(RefCell::new(SubStats::default()));
        stats.push(Rc::clone(&st));
        let shared = Rc::clone(&shared);
        let n = p.n;
        let fast = p.fast;
        tasks.push(tokio::task::spawn_local(async move {
            // On success it keeps its connection open (idle) until aborted.
            if let Err(e) = subscriber(addr, n, fast, &shared, &st).await {
                st.borrow_mut().failure = Some(e.to_string());
                shared.finished.set(shared.finished.get() + 1);
                shared.notify.notify_one();
            }
        }));
    }
    // Every subscriber has its `: ok` (or failed).
    let setup_until = Instant::now() + Duration::from_secs(20);
    while shared.subscribed.get() + shared.finished.get() < p.c {
        if tokio::time::timeout_at(setup_until.into(), shared.notify.notified())
            .await
            .is_err()
        {
            return Err(format!(
                "only {} of {} subscribers got `: ok` within 20 s",
                shared.subscribed.get(),
                p.c
            )
            .into());
        }
    }
    if let Some(f) = stats.iter().find_map(|s| s.borrow().failure.clone()) {
        return Err(format!("a subscriber failed before the burst: {f}").into());
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_idle = rss_all(&target.pids)?;
    let kib_per_idle = rss_idle.saturating_sub(rss_before) as f64 / p.c as f64;

    let cpu0 = (cpu_all(&target.pids), cpu_ns(std::process::id()));
    let t0 = Instant::now();
    let (status, body) = request(
        target.publish,
        &format!("POST /pub/bench?n={}&size={} HTTP/1.1", p.n, p.size),
    )
    .await?;
    let post_ms = t0.elapsed().as_secs_f64() * 1e3;
    if status != 200 || body.trim() != p.n.to_string() {
        return Err(format!("POST /pub answered {status} {body:?}").into());
    }
    let until = t0 + p.limit;
    while shared.finished.get() < p.c {
        if tokio::time::timeout_at(until.into(), shared.notify.notified())
            .await
            .is_err()
        {
            break;
        }
    }
    let cpu1 = (cpu_all(&target.pids), cpu_ns(std::process::id()));
    let burst_ns = t0.elapsed().as_nanos().max(1) as f64;
    // The same connections, idle again after the burst.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss_after = rss_all(&target.pids)?;
    let kib_after_burst = rss_after.saturating_sub(rss_before) as f64 / p.c as f64;
    for t in &tasks {
        t.abort();
    }
    for t in tasks {
        let _ = t.await;
    }
    let mut received = 0u64;
    let mut errors = 0u64;
    let mut bytes = 0u64;
    let mut last = t0;
    let mut lat: Vec<u64> = Vec::with_capacity(p.c * p.n as usize);
    for s in &stats {
        let s = s.borrow();
        received += s.received;
        errors += s.errors;
        bytes += s.bytes;
        if let Some(l) = s.last {
            last = last.max(l);
        }
        lat.extend_from_slice(&s.latencies);
    }
    let secs = last.duration_since(t0).as_secs_f64().max(1e-9);
    let mut pct = |q: f64| -> f64 {
        if lat.is_empty() {
            return 0.0;
        }
        let i = ((lat.len() as f64 * q) as usize).min(lat.len() - 1);
        *lat.select_nth_unstable(i).1 as f64 / 1e6
    };
    let (p50, p99) = (pct(0.50), pct(0.99));
    let max = lat.iter().copied().max().unwrap_or(0) as f64 / 1e6;
    Ok(RunResult {
        events_per_s: received as f64 / secs,
        mib_per_s: bytes as f64 / secs / (1 << 20) as f64,
        p50_ms: p50,
        p99_ms: p99,
        max_ms: max,
        lost: (p.c as u64 * p.n).saturating_sub(received),
        errors,
        kib_per_idle,
        kib_after_burst,
        post_ms,
        server_cpu: cpu1.0.saturating_sub(cpu0.0) as f64 / burst_ns,
        loadgen_cpu: cpu1.1.saturating_sub(cpu0.1) as f64 / burst_ns,
    })
}

/// A request on its own connection (`Connection: close`); returns the status and the body.
async fn request(addr: SocketAddr, request_line: &str) -> Res<(u16, String)> {
    let mut s = TcpStream::connect(addr).await?;
    let req =
        format!("{request_line}\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await?;
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).await?;
    let text = String::from_utf8_lossy(&resp);
    let (head, body) = text.split_once("\r\n\r\n").ok_or("no response head")?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or("no status")?;
    Ok((status, body.to_owned()))
}

thread_local! {
    static BUF: RefCell<Vec<u8>> = RefCell::new(vec![0; READ_BUF]);
}

async fn connect(addr: SocketAddr) -> Res<TcpStream> {
    let mut delay = Duration::from_millis(20);
    for _ in 0..6 {
        match TcpStream::connect(addr).await {
            Ok(s) => return Ok(s),
            Err(_) => {
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
        }
    }
    Ok(TcpStream::connect(addr).await?)
}

async fn subscriber(
    addr: SocketAddr,
    n: u64,
    fast: bool,
    shared: &Shared,
    st: &RefCell<SubStats>,
) -> Res<()> {
    let mut s = connect(addr).await?;
    s.set_nodelay(true)?;
    let req =
        format!("GET /sub/bench HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n");
    s.write_all(req.as_bytes()).await?;
    let mut conn = Client::new(fast);
    st.borrow_mut().latencies.reserve(n as usize);
    loop {
        s.readable().await?;
        let step = BUF.with(|b| -> Res<Step> {
            let mut b = b.borrow_mut();
            match s.try_read(&mut b[..]) {
                Ok(0) => Ok(Step::Eof),
                Ok(k) => {
                    let now = wall_ns();
                    let mut st = st.borrow_mut();
                    let before = st.received;
                    conn.feed(&b[..k], now, &mut st)?;
                    if st.received > before {
                        st.last = Some(Instant::now());
                    }
                    Ok(Step::Read)
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(Step::Read),
                Err(e) => Err(e.into()),
            }
        })?;
        if conn.ok_seen && !conn.counted {
            conn.counted = true;
            shared.subscribed.set(shared.subscribed.get() + 1);
            shared.notify.notify_one();
        }
        if st.borrow().received >= n {
            shared.finished.set(shared.finished.get() + 1);
            shared.notify.notify_one();
            drop(conn);
            std::future::pending::<()>().await;
            return Ok(());
        }
        if let Step::Eof = step {
            return Err("server closed the stream".into());
        }
    }
}

enum Step {
    Read,
    Eof,
}

/// The client side of one stream: response head, chunked transfer coding, SSE decoding.
struct Client {
    head: Option<Vec<u8>>,
    chunked: bool,
    dechunk: Dechunk,
    parser: Parser,
    /// Bytes of `: ok\n\n` matched at the start of the body.
    prefix: usize,
    ok_seen: bool,
    counted: bool,
    next_id: u64,
}

const OK_FRAME: &[u8] = b": ok\n\n";

impl Client {
    fn new(fast: bool) -> Client {
        Client {
            head: Some(Vec::new()),
            chunked: false,
            dechunk: Dechunk::Size(0),
            parser: if fast {
                Parser::Fast(FastParser::default())
            } else {
                Parser::Decoder(Box::default())
            },
            prefix: 0,
            ok_seen: false,
            counted: false,
            next_id: 1,
        }
    }

    fn feed(&mut self, b: &[u8], now: u64, st: &mut SubStats) -> Res<()> {
        if let Some(head) = &mut self.head {
            head.extend_from_slice(b);
            let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") else {
                return Ok(());
            };
            let text = String::from_utf8_lossy(&head[..end]).to_ascii_lowercase();
            if !text.starts_with("http/1.1 200") {
                return Err(format!("unexpected response: {text:?}").into());
            }
            self.chunked = text
                .lines()
                .any(|l| l.starts_with("transfer-encoding:") && l.contains("chunked"));
            let rest = head[end + 4..].to_vec();
            self.head = None;
            return self.body(&rest, now, st);
        }
        self.body(b, now, st)
    }

    fn body(&mut self, b: &[u8], now: u64, st: &mut SubStats) -> Res<()> {
        if self.chunked {
            let mut parts: Vec<(usize, usize)> = Vec::new();
            self.dechunk.feed(b, &mut parts)?;
            for (s, e) in parts {
                self.data(&b[s..e], now, st)?;
            }
            Ok(())
        } else {
            self.data(b, now, st)
        }
    }

    fn data(&mut self, b: &[u8], now: u64, st: &mut SubStats) -> Res<()> {
        st.bytes += b.len() as u64;
        if self.prefix < OK_FRAME.len() {
            let k = (OK_FRAME.len() - self.prefix).min(b.len());
            if b[..k] != OK_FRAME[self.prefix..self.prefix + k] {
                return Err("the stream does not start with `: ok`".into());
            }
            self.prefix += k;
            self.ok_seen = self.prefix == OK_FRAME.len();
        }
        let next_id = &mut self.next_id;
        let mut on_event = |id: u64, seq: Option<u64>, ts: Option<u64>| {
            st.received += 1;
            if id != *next_id || seq != Some(id) {
                st.errors += 1;
            }
            *next_id = id + 1;
            if let Some(ts) = ts {
                st.latencies.push(now.saturating_sub(ts));
            }
        };
        match &mut self.parser {
            Parser::Decoder(d) => {
                d.feed(b);
                while let Some(ev) = d.next_event() {
                    let (seq, ts) = seq_ts(ev.data.as_bytes());
                    on_event(id_seq(ev.last_event_id.as_bytes()).unwrap_or(0), seq, ts);
                }
            }
            Parser::Fast(f) => f.feed(b, &mut on_event)?,
        }
        Ok(())
    }
}

/// `seq` and `ts` of a payload `{"seq":K,"ts":NANOS,…}`.
fn seq_ts(data: &[u8]) -> (Option<u64>, Option<u64>) {
    let Some(rest) = data.strip_prefix(b"{\"seq\":") else {
        return (None, None);
    };
    let (seq, rest) = digits(rest);
    let ts = rest.strip_prefix(b",\"ts\":").and_then(|r| digits(r).0);
    (seq, ts)
}

/// The sequence number of an SSE id: the hub's `INCARNATION:SEQ` (the part after the last `:`)
/// or a bare number (the baseline's).
fn id_seq(id: &[u8]) -> Option<u64> {
    let tail = match memchr::memrchr(b':', id) {
        Some(i) => &id[i + 1..],
        None => id,
    };
    match digits(tail) {
        (Some(v), []) => Some(v),
        _ => None,
    }
}

/// The unsigned integer at the start of `b` (at most 19 digits), and what follows it.
fn digits(b: &[u8]) -> (Option<u64>, &[u8]) {
    let mut v = 0u64;
    let mut n = 0;
    while let Some(&c) = b.get(n) {
        let d = c.wrapping_sub(b'0');
        if d > 9 || n == 19 {
            break;
        }
        v = v * 10 + u64::from(d);
        n += 1;
    }
    ((n > 0).then_some(v), &b[n..])
}

/// How a subscriber parses its stream.
enum Parser {
    /// `sse_core::Decoder`: spec-exact, one `DecodedEvent` (three strings) per event.
    Decoder(Box<Decoder>),
    /// A line scanner for the shape these servers send (LF or CRLF line ends, the payload on
    /// the first `data:` line), allocating nothing per event: for when the decoder, not the
    /// server, would be the bottleneck (`PARSER=fast`).
    Fast(FastParser),
}

#[derive(Default)]
struct FastParser {
    /// The start of a line cut by a read.
    partial: Vec<u8>,
    last_id: u64,
    has_data: bool,
    seq: Option<u64>,
    ts: Option<u64>,
}

impl FastParser {
    fn feed(
        &mut self,
        mut b: &[u8],
        on_event: &mut impl FnMut(u64, Option<u64>, Option<u64>),
    ) -> Res<()> {
        while let Some(nl) = memchr::memchr(b'\n', b) {
            if self.partial.is_empty() {
                self.line(&b[..nl], on_event);
            } else {
                let mut line = std::mem::take(&mut self.partial);
                line.extend_from_slice(&b[..nl]);
                self.line(&line, on_event);
                line.clear();
                self.partial = line;
            }
            b = &b[nl + 1..];
        }
        self.partial.extend_from_slice(b);
        if self.partial.len() > 4 << 20 {
            return Err("a line longer than 4 MiB".into());
        }
        Ok(())
    }

    fn line(&mut self, line: &[u8], on_event: &mut impl FnMut(u64, Option<u64>, Option<u64>)) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            if std::mem::take(&mut self.has_data) {
                on_event(self.last_id, self.seq.take(), self.ts.take());
            }
        } else if let Some(v) = line.strip_prefix(b"data:") {
            let v = v.strip_prefix(b" ").unwrap_or(v);
            if !self.has_data {
                (self.seq, self.ts) = seq_ts(v);
            }
            self.has_data = true;
        } else if let Some(v) = line.strip_prefix(b"id:") {
            let v = v.strip_prefix(b" ").unwrap_or(v);
            self.last_id = id_seq(v).unwrap_or(0);
        }
    }
}

/// Undoes the chunked transfer coding.
#[derive(Debug, Clone, Copy)]
enum Dechunk {
    Size(u64),
    Ext(u64),
    SizeLf(u64),
    Data(u64),
    DataCr,
    DataLf,
    Done,
}

impl Dechunk {
    /// Appends the ranges of `b` that are data to `out`.
    fn feed(&mut self, b: &[u8], out: &mut Vec<(usize, usize)>) -> Res<()> {
        let mut i = 0;
        while i < b.len() {
            let c = b[i];
            *self = match *self {
                Dechunk::Size(v) => match (c as char).to_digit(16) {
                    Some(d) => Dechunk::Size(v * 16 + u64::from(d)),
                    None if c == b'\r' => Dechunk::SizeLf(v),
                    None => Dechunk::Ext(v),
                },
                Dechunk::Ext(v) if c == b'\r' => Dechunk::SizeLf(v),
                Dechunk::Ext(v) => Dechunk::Ext(v),
                Dechunk::SizeLf(0) => Dechunk::Done,
                Dechunk::SizeLf(v) => Dechunk::Data(v),
                Dechunk::Data(v) => {
                    let take = (v as usize).min(b.len() - i);
                    out.push((i, i + take));
                    i += take;
                    let left = v - take as u64;
                    *self = if left == 0 {
                        Dechunk::DataCr
                    } else {
                        Dechunk::Data(left)
                    };
                    continue;
                }
                Dechunk::DataCr => Dechunk::DataLf,
                Dechunk::DataLf => Dechunk::Size(0),
                Dechunk::Done => return Ok(()),
            };
            i += 1;
        }
        Ok(())
    }
}
