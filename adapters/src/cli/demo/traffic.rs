//! The demo's visitors: real HTTP requests over loopback to the app, at about `--rate` per
//! second in total.
//!
//! | client (`x-client-id`) | share | what it does |
//! |---|---|---|
//! | `shopper-N`, one of `ceil(rate × 0.86 / 4)` (at most 500) | 86 % | browses by the routes' shares, sometimes with bad input; about 4 requests/s each, within the limit |
//! | `abuser` | 10 % | searches and product pages as fast as the share allows: 20/s at the default rate, twice its limit |
//! | `scanner` | 2 % | probes paths that do not exist (`/.env`, `/wp-admin/`, ...): 404s, the path-scan rule |
//! | `brute-forcer` | 2 % | logs in as `admin@example.com` with wrong passwords: 401s, the brute-force rule |
//!
//! Above 500 req/s the scanner and the brute-forcer exceed their own limit too, and above
//! about 5,000 req/s (500 shoppers at 10/s) so do shoppers.
//!
//! # Bounds
//!
//! A fixed pool of keep-alive HTTP/1.1 connections (hyper's `client::conn::http1`),
//! [`POOL_HEADROOM`] times the requests in flight on average (by Little's law, the rate
//! times the routes' mean latency, [`shop::mean_seconds`]: 18 at the default 200/s), at
//! least 4 and at most [`MAX_CONNECTIONS`], each carrying one
//! request at a time, takes requests from a queue of a few ticks' worth. A request due when
//! the queue is full is skipped and counted (`skipped` on the status line), so a slow app
//! sees at most the pool's requests at once and nothing piles up in memory. A request that
//! fails or takes longer than [`REQUEST_TIMEOUT`] is counted as `failed`, and its connection
//! is replaced.

use super::http::{self, Whole};
use super::shop::{self, Rng, RouteId};
use crate::cli::run::CLOCK;
use crate::cli::stopped;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use plimsoll::Clock;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::{Mutex, mpsc, watch};
use tokio::time::MissedTickBehavior;

/// The most connections the generator keeps open.
pub(crate) const MAX_CONNECTIONS: usize = 128;
/// Connections per request in flight on average. Twice covers the bursts of the pacing
/// and the slow tail; search's incident, which about doubles the mean, fills the pool, and
/// requests due meanwhile are skipped (counted) as impatient visitors would leave. Each
/// connection costs about 60 KiB with the app's end of it, so no more than this.
const POOL_HEADROOM: f64 = 2.0;
/// A request that takes longer is abandoned and counted as failed.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The most shoppers: each is a key in the rate limiter's table.
const MAX_SHOPPERS: u32 = 500;
/// Requests per second each shopper makes, about: well within its limit of 10.
const SHOPPER_RATE: f64 = 4.0;
const TICK: Duration = Duration::from_millis(20);
/// After a stall (a suspended process), at most this much traffic is caught up at once.
const MAX_CATCH_UP_MS: u64 = 1_000;
/// After a failed connection attempt, a worker waits this long before the next.
const RECONNECT_DELAY: Duration = Duration::from_millis(100);

/// What the generator did, for the status line.
#[derive(Debug)]
pub(crate) struct Counts {
    pub(crate) sent: AtomicU64,
    pub(crate) skipped: AtomicU64,
    pub(crate) failed: AtomicU64,
}

pub(crate) static COUNTS: Counts =
    Counts { sent: AtomicU64::new(0), skipped: AtomicU64::new(0), failed: AtomicU64::new(0) };

/// Who sends a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Client {
    Shopper(u32),
    Abuser,
    Scanner,
    BruteForcer,
}

impl Client {
    /// The next request's sender, by the shares of the [module docs](self).
    fn pick(rng: &mut Rng, shoppers: u32) -> Self {
        match rng.below(100) {
            0..10 => Self::Abuser,
            10..12 => Self::Scanner,
            12..14 => Self::BruteForcer,
            _ => Self::Shopper(rng.below(shoppers)),
        }
    }

    fn id(self) -> HeaderValue {
        match self {
            Self::Shopper(n) => HeaderValue::from_str(&format!("shopper-{n}")).expect("ASCII"),
            Self::Abuser => HeaderValue::from_static("abuser"),
            Self::Scanner => HeaderValue::from_static("scanner"),
            Self::BruteForcer => HeaderValue::from_static("brute-forcer"),
        }
    }

    /// The request it sends: method, path and form body.
    fn request(self, rng: &mut Rng) -> (Method, String, Option<String>) {
        match self {
            Self::Shopper(n) => shopper_request(n, rng),
            Self::Abuser if rng.chance(0.5) => (Method::GET, format!("/search?q={}", word(rng)), None),
            Self::Abuser => (Method::GET, format!("/products/{}", 1 + rng.below(super::app::PRODUCTS)), None),
            Self::Scanner => {
                let probe = PROBES[rng.below(PROBES.len() as u32) as usize];
                (Method::GET, probe.replace("{n}", &rng.below(100).to_string()), None)
            }
            Self::BruteForcer => (
                Method::POST,
                "/login".to_owned(),
                Some(format!("email=admin%40example.com&password=guess{}", rng.below(1_000_000))),
            ),
        }
    }
}

/// Paths scanners try; `{n}` becomes a number, so every probe is a new path.
const PROBES: [&str; 8] = [
    "/.env",
    "/.git/config",
    "/wp-admin/",
    "/wp-login.php",
    "/phpmyadmin/index.php",
    "/backup-{n}.zip",
    "/admin/config-{n}.php",
    "/cgi-bin/test{n}.cgi",
];

const WORDS: [&str; 8] = ["lamp", "chair", "red shoes", "kettle", "desk", "o'clock", "mug", "rug"];

fn word(rng: &mut Rng) -> String {
    WORDS[rng.below(WORDS.len() as u32) as usize].replace(' ', "+")
}

/// A shopper's request: a route by its share, with bad input at its client error chance.
fn shopper_request(n: u32, rng: &mut Rng) -> (Method, String, Option<String>) {
    let route = shop::pick_route(rng);
    let bad = rng.chance(route.client_error_chance);
    let product = if bad { super::app::PRODUCTS + 1 + rng.below(9_000) } else { 1 + rng.below(super::app::PRODUCTS) };
    let post = |body: String| (Method::POST, route.template.to_owned(), Some(body));
    match route.id {
        RouteId::Home | RouteId::Unmatched => (Method::GET, "/".to_owned(), None),
        RouteId::Product => (Method::GET, format!("/products/{product}"), None),
        RouteId::Search if bad => (Method::GET, "/search?q=".to_owned(), None),
        RouteId::Search => (Method::GET, format!("/search?q={}", word(rng)), None),
        RouteId::Leads if bad => post("email=not-an-email".to_owned()),
        RouteId::Leads => post(format!("email=shopper{n}.{}%40example.com&source=home", rng.below(1_000))),
        RouteId::Checkout if bad => post(format!("product={product}&quantity=0")),
        RouteId::Checkout => post(format!("product={product}&quantity={}", 1 + rng.below(3))),
        RouteId::Login => {
            let password = if bad { "dmeo" } else { super::app::PASSWORD };
            post(format!("email=shopper{n}%40example.com&password={password}"))
        }
    }
}

/// Sends about `rate` requests per second to the app at `app` until `stop`.
pub(crate) async fn run(app: SocketAddr, rate: u32, mut stop: watch::Receiver<bool>) {
    let in_flight = f64::from(rate) * shop::mean_seconds();
    let connections = ((in_flight * POOL_HEADROOM).ceil() as usize).clamp(4, MAX_CONNECTIONS);
    let shoppers = ((f64::from(rate) * 0.86 / SHOPPER_RATE).ceil() as u32).clamp(1, MAX_SHOPPERS);
    // Two ticks' worth, so a tick's burst fits while the pool keeps up.
    let queue = connections.max(rate as usize * 2 * TICK.as_millis() as usize / 1_000);
    let (jobs, receiver) = mpsc::channel::<Client>(queue);
    let receiver = Arc::new(Mutex::new(receiver));
    let workers: Vec<_> =
        (0..connections).map(|_| tokio::spawn(worker(app, Arc::clone(&receiver), stop.clone()))).collect();
    let mut pacer = Pacer::new(rate, CLOCK.now_ms());
    let mut rng = Rng::new();
    let mut ticks = tokio::time::interval(TICK);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {
                for _ in 0..pacer.due(CLOCK.now_ms()) {
                    if jobs.try_send(Client::pick(&mut rng, shoppers)).is_err() {
                        COUNTS.skipped.fetch_add(1, Relaxed);
                    }
                }
            }
            () = stopped(&mut stop) => break,
        }
    }
    // Closing the queue ends the workers once it is empty.
    drop(jobs);
    for worker in workers {
        let _ = worker.await;
    }
}

/// One connection: takes requests from the queue and sends them, one at a time.
async fn worker(app: SocketAddr, jobs: Arc<Mutex<mpsc::Receiver<Client>>>, mut stop: watch::Receiver<bool>) {
    // Connected before the first request is due, so start-up skips nothing; a failure here
    // is retried with the first request.
    let mut connection = connect(app).await.ok();
    let mut rng = Rng::new();
    loop {
        let next = async { jobs.lock().await.recv().await };
        let client = tokio::select! {
            client = next => match client {
                Some(client) => client,
                None => return,
            },
            () = stopped(&mut stop) => return,
        };
        let sender = match connection.as_mut() {
            Some(sender) => sender,
            None => match connect(app).await {
                Ok(sender) => connection.insert(sender),
                Err(_) => {
                    COUNTS.failed.fetch_add(1, Relaxed);
                    tokio::time::sleep(RECONNECT_DELAY).await;
                    continue;
                }
            },
        };
        let request = build(client, &mut rng);
        let sent = tokio::select! {
            sent = tokio::time::timeout(REQUEST_TIMEOUT, send(sender, request)) => sent,
            () = stopped(&mut stop) => return,
        };
        match sent {
            Ok(Ok(())) => COUNTS.sent.fetch_add(1, Relaxed),
            Ok(Err(_)) | Err(_) => {
                connection = None;
                COUNTS.failed.fetch_add(1, Relaxed)
            }
        };
    }
}

fn build(client: Client, rng: &mut Rng) -> Request<Whole> {
    let (method, path, form) = client.request(rng);
    let builder = Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, "shop.demo")
        .header("x-client-id", client.id());
    let request = match form {
        Some(form) => builder.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded").body(Whole::from(form)),
        None => builder.body(Whole::default()),
    };
    // Methods, paths and headers are built above from valid parts.
    request.expect("a valid request")
}

async fn connect(app: SocketAddr) -> Result<SendRequest<Whole>, Box<dyn std::error::Error + Send + Sync>> {
    let stream = TcpStream::connect(app).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    // The connection ends when its sender is dropped or the app closes it.
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

async fn send(sender: &mut SendRequest<Whole>, request: Request<Whole>) -> Result<(), hyper::Error> {
    sender.ready().await?;
    let response = sender.send_request(request).await?;
    http::drain(response.into_body()).await?;
    Ok(())
}

/// How many requests are due at each tick for a steady rate.
#[derive(Debug)]
struct Pacer {
    rate: u32,
    /// Requests owed but not yet due (a fraction of one).
    carry: f64,
    last_ms: u64,
}

impl Pacer {
    fn new(rate: u32, now_ms: u64) -> Self {
        Self { rate, carry: 0.0, last_ms: now_ms }
    }

    /// The requests due between the previous call and `now_ms`.
    fn due(&mut self, now_ms: u64) -> u64 {
        let elapsed = now_ms.saturating_sub(self.last_ms).min(MAX_CATCH_UP_MS);
        self.last_ms = self.last_ms.max(now_ms);
        self.carry += f64::from(self.rate) * elapsed as f64 / 1_000.0;
        let due = self.carry.floor();
        self.carry -= due;
        due as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pacer_keeps_the_rate_without_drift() {
        let start = 1_800_000_000_000;
        let mut pacer = Pacer::new(200, start);
        let due: u64 = (1..=200).map(|tick| pacer.due(start + tick * 50)).sum();
        assert_eq!(due, 2_000, "10 s at 200/s");
        // A 10 s stall catches up at most one second of traffic.
        assert_eq!(pacer.due(start + 20_000), 200);
        // A clock that steps back owes nothing and does not rewind.
        assert_eq!(pacer.due(start), 0);
        assert_eq!(pacer.due(start + 20_050), 10);
    }

    #[test]
    fn the_mix_has_its_shares_and_every_request_is_valid() {
        let mut rng = Rng::seeded(5);
        let mut counts = [0u32; 4];
        for _ in 0..10_000 {
            let client = Client::pick(&mut rng, 43);
            counts[match client {
                Client::Shopper(n) => {
                    assert!(n < 43);
                    0
                }
                Client::Abuser => 1,
                Client::Scanner => 2,
                Client::BruteForcer => 3,
            }] += 1;
            let request = build(client, &mut rng);
            let route = RouteId::of(request.uri().path());
            assert_eq!(route == RouteId::Unmatched, client == Client::Scanner, "{}", request.uri());
        }
        assert!((8_300..8_900).contains(&counts[0]) && (850..1_150).contains(&counts[1]), "{counts:?}");
        assert!(counts[2] > 100 && counts[3] > 100, "{counts:?}");
    }
}
