//! The shop's model: its routes, how long each takes, when it fails, the database queries it
//! runs and the payment dependency it calls. The [`app`](super::app) serves requests by this
//! model and the [`traffic`](super::traffic) generator picks routes and inputs from it.
//!
//! Nothing here does I/O or reads a clock: callers pass the time and a random stream, so the
//! model is tested on its own (its calm minutes keep within the SLO, its incidents burn it).

use plimsoll::query::fingerprint::Fingerprint;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

pub(crate) const MINUTE_MS: u64 = 60_000;

/// The shop's routes, by template: the `route` label, the span name and the key of the
/// [`ROUTES`] table. [`Unmatched`](Self::Unmatched) stands for every other path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RouteId {
    Home,
    Product,
    Search,
    Leads,
    Checkout,
    Login,
    Unmatched,
}

impl RouteId {
    /// The route serving `path` (its query string excluded).
    pub(crate) fn of(path: &str) -> Self {
        match path {
            "/" => Self::Home,
            "/search" => Self::Search,
            "/leads" => Self::Leads,
            "/checkout" => Self::Checkout,
            "/login" => Self::Login,
            _ => match path.strip_prefix("/products/") {
                Some(id) if !id.is_empty() && !id.contains('/') => Self::Product,
                _ => Self::Unmatched,
            },
        }
    }

    /// The route's row of [`ROUTES`].
    pub(crate) fn route(self) -> &'static Route {
        &ROUTES[self as usize]
    }

    /// The route template: `/products/:id`, or `unmatched` for every unknown path, so that
    /// a path scan adds no series.
    pub(crate) fn template(self) -> &'static str {
        self.route().template
    }
}

/// A route: its traffic share, its latency and error model, and its queries.
#[derive(Debug)]
pub(crate) struct Route {
    pub(crate) id: RouteId,
    pub(crate) method: &'static str,
    pub(crate) template: &'static str,
    /// Share of the shoppers' traffic, in percent (the shares add up to 100).
    pub(crate) share: u32,
    /// Median latency; latencies are log-normal around it with spread `sigma`.
    median_seconds: f64,
    sigma: f64,
    /// Chance of a slow request (4–20 times the sampled latency): a cold cache, lock
    /// contention, a query that missed its index.
    slow_chance: f64,
    /// Chance that a shopper sends input the route refuses (an unknown product, an empty
    /// search, a malformed form): the generator's doing, answered with a 4xx.
    pub(crate) client_error_chance: f64,
    /// Chance of a server error (500, or 503 one time in four).
    server_error_chance: f64,
    /// The queries a request runs, each with its share of the request's latency.
    pub(crate) queries: &'static [(Shape, f64)],
}

/// Every route, in [`RouteId`] order. The first five and their figures are the original
/// demo's synthetic shop; login (taken from the home page's share) feeds the brute-force
/// rule; unmatched paths answer 404 quickly.
pub(crate) const ROUTES: [Route; 7] = [
    Route {
        id: RouteId::Home,
        method: "GET",
        template: "/",
        share: 38,
        median_seconds: 0.012,
        sigma: 0.5,
        slow_chance: 0.005,
        client_error_chance: 0.0,
        server_error_chance: 0.001,
        queries: &[(Shape::FeaturedProducts, 0.5)],
    },
    Route {
        id: RouteId::Product,
        method: "GET",
        template: "/products/:id",
        share: 25,
        median_seconds: 0.025,
        sigma: 0.6,
        slow_chance: 0.01,
        client_error_chance: 0.02,
        server_error_chance: 0.002,
        queries: &[(Shape::ProductById, 0.25), (Shape::Reviews, 0.35)],
    },
    Route {
        id: RouteId::Search,
        method: "GET",
        template: "/search",
        share: 20,
        median_seconds: 0.06,
        sigma: 0.6,
        slow_chance: 0.01,
        client_error_chance: 0.01,
        server_error_chance: 0.002,
        queries: &[(Shape::Search, 0.8)],
    },
    Route {
        id: RouteId::Leads,
        method: "POST",
        template: "/leads",
        share: 10,
        median_seconds: 0.045,
        sigma: 0.5,
        slow_chance: 0.005,
        client_error_chance: 0.03,
        server_error_chance: 0.003,
        queries: &[(Shape::LeadByEmail, 0.3), (Shape::InsertLead, 0.3)],
    },
    Route {
        id: RouteId::Checkout,
        method: "POST",
        template: "/checkout",
        share: 5,
        median_seconds: 0.12,
        sigma: 0.4,
        slow_chance: 0.01,
        client_error_chance: 0.02,
        server_error_chance: 0.005,
        queries: &[(Shape::CartPrices, 0.15), (Shape::ReserveStock, 0.2), (Shape::InsertOrder, 0.15)],
    },
    Route {
        id: RouteId::Login,
        method: "POST",
        template: "/login",
        share: 2,
        median_seconds: 0.06,
        sigma: 0.3,
        slow_chance: 0.005,
        client_error_chance: 0.05,
        server_error_chance: 0.001,
        queries: &[(Shape::UserByEmail, 0.3)],
    },
    Route {
        id: RouteId::Unmatched,
        method: "GET",
        template: "unmatched",
        share: 0,
        median_seconds: 0.002,
        sigma: 0.3,
        slow_chance: 0.0,
        client_error_chance: 0.0,
        server_error_chance: 0.0,
        queries: &[],
    },
];

/// Checkout's share of the latency spent waiting for the payment service.
pub(crate) const PAYMENT_SHARE: f64 = 0.4;
/// An answer refused before any work (bad input, an open breaker, a rate limit): about 2 ms.
const FAST_MEDIAN_SECONDS: f64 = 0.002;
/// The home page misses its cache of top sellers this often, and runs the slow report.
const TOP_SELLERS_MISS: f64 = 0.005;

/// When the incidents' cycle began: the demo's start ([`start_incidents`]).
static INCIDENTS_FROM_MS: AtomicU64 = AtomicU64::new(0);
/// Payments fail in this minute (from 0) of every ten after the start...
const PAYMENT_MINUTE: u64 = 1;
/// ...and search is degraded in this one.
const SEARCH_MINUTE: u64 = 3;

/// Starts the incidents' ten-minute cycle at `now_ms`. Both incidents come in its first
/// five minutes: a visitor sees them soon, and they fall in the memory monitor's warm-up
/// (5 minutes), so the first time their code runs and their extra requests in flight are
/// not taken for growth; every later cycle repeats them.
pub(crate) fn start_incidents(now_ms: u64) {
    INCIDENTS_FROM_MS.store(now_ms, Relaxed);
}

/// The minute of the incidents' cycle at `now_ms`, 0 to 9.
fn minute_of_cycle(now_ms: u64) -> u64 {
    now_ms.saturating_sub(INCIDENTS_FROM_MS.load(Relaxed)) / MINUTE_MS % 10
}

/// Whether search is degraded at `now_ms`: the fourth minute of every ten from the start
/// (four times slower, 5 % server errors).
pub(crate) fn search_incident(now_ms: u64) -> bool {
    minute_of_cycle(now_ms) == SEARCH_MINUTE
}

/// Whether the payment service is failing at `now_ms`: the second minute of every ten
/// from the start.
pub(crate) fn payment_incident(now_ms: u64) -> bool {
    minute_of_cycle(now_ms) == PAYMENT_MINUTE
}

/// How a request will go: its latency and whether the server fails it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan {
    pub(crate) latency_seconds: f64,
    /// 500 or 503, if the request fails inside the shop.
    pub(crate) server_error: Option<u16>,
}

impl Route {
    /// A request's plan at `now_ms`: a log-normal latency with the route's slow tail, and
    /// its server error, if any (search's incident included).
    pub(crate) fn plan(&self, rng: &mut Rng, now_ms: u64) -> Plan {
        let incident = self.id == RouteId::Search && search_incident(now_ms);
        let mut latency_seconds = self.median_seconds * (self.sigma * rng.normal()).exp();
        if rng.chance(self.slow_chance) {
            latency_seconds *= 4.0 + 16.0 * rng.uniform();
        }
        if incident {
            latency_seconds *= 4.0;
        }
        let server_error_chance = if incident { 0.05 } else { self.server_error_chance };
        let server_error = rng.chance(server_error_chance).then(|| if rng.chance(0.25) { 503 } else { 500 });
        Plan { latency_seconds, server_error }
    }
}

/// The mean of a shopper's request's planned latency outside the incidents: over the
/// routes by share, a log-normal's mean (`median × e^(σ²/2)`) times the slow tail's
/// (`1 + 11 × slow_chance`, a slow request taking 12 times as long on average).
pub(crate) fn mean_seconds() -> f64 {
    ROUTES
        .iter()
        .map(|r| {
            f64::from(r.share) / 100.0
                * r.median_seconds
                * (r.sigma * r.sigma / 2.0).exp()
                * (1.0 + 11.0 * r.slow_chance)
        })
        .sum()
}

/// A shopper's next route, by the routes' shares.
pub(crate) fn pick_route(rng: &mut Rng) -> &'static Route {
    let mut pick = rng.below(100);
    for route in &ROUTES {
        if pick < route.share {
            return route;
        }
        pick -= route.share;
    }
    // The shares add up to 100 (tested), so this is never reached.
    &ROUTES[0]
}

/// The time of an answer refused before any work.
pub(crate) fn fast_seconds(rng: &mut Rng) -> f64 {
    FAST_MEDIAN_SECONDS * (0.3 * rng.normal()).exp()
}

/// Whether the home page runs the top sellers report this time (a cache miss), and how long
/// it takes: 120–300 ms, a slow query.
pub(crate) fn top_sellers_miss(rng: &mut Rng) -> Option<f64> {
    rng.chance(TOP_SELLERS_MISS).then(|| 0.12 + 0.18 * rng.uniform())
}

/// Whether a call to the payment service at `now_ms` succeeds: it fails 2 % of the time,
/// 60 % during its incident minute.
pub(crate) fn payment_succeeds(rng: &mut Rng, now_ms: u64) -> bool {
    let failure = if payment_incident(now_ms) { 0.6 } else { 0.02 };
    !rng.chance(failure)
}

/// The shapes of the shop's SQL: each request writes real statements with its own
/// literals, which [`plimsoll::fingerprint`] folds back into these shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    FeaturedProducts,
    TopSellers,
    ProductById,
    Reviews,
    Search,
    LeadByEmail,
    InsertLead,
    CartPrices,
    ReserveStock,
    InsertOrder,
    UserByEmail,
}

/// The values a request's queries are written with.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Values<'a> {
    pub(crate) product: u32,
    pub(crate) quantity: u32,
    pub(crate) text: &'a str,
}

impl Shape {
    /// The statement with `values` and a few random literals, quoted as SQL strings.
    pub(crate) fn sql(self, values: &Values<'_>, rng: &mut Rng) -> String {
        let mut sql = String::with_capacity(160);
        let text = Quoted(values.text);
        let (product, quantity) = (values.product, values.quantity);
        // Writing into a String cannot fail.
        let _ = match self {
            Self::FeaturedProducts => write!(
                sql,
                "SELECT id, name, price FROM products WHERE featured = true AND stock > 0 ORDER BY rank LIMIT {}",
                8 + 4 * rng.below(2)
            ),
            Self::TopSellers => write!(
                sql,
                "SELECT p.id, p.name, sum(i.quantity) AS sold FROM order_items i JOIN products p ON p.id = \
                 i.product_id WHERE i.created_at > '2026-{:02}-01' GROUP BY p.id, p.name ORDER BY sold DESC LIMIT 10",
                1 + rng.below(12)
            ),
            Self::ProductById => {
                write!(sql, "SELECT id, name, price, description FROM products WHERE id = {product}")
            }
            Self::Reviews => write!(
                sql,
                "SELECT rating, body, author FROM reviews WHERE product_id = {product} AND approved = true \
                 ORDER BY created_at DESC LIMIT 5"
            ),
            Self::Search => write!(
                sql,
                "SELECT id, name, price FROM products WHERE category_id = {} AND name LIKE '%{text}%' \
                 ORDER BY price LIMIT 20",
                1 + rng.below(24)
            ),
            Self::LeadByEmail => write!(sql, "SELECT id FROM leads WHERE email = '{text}'"),
            Self::InsertLead => write!(
                sql,
                "INSERT INTO leads (email, source, created_at) VALUES ('{text}', '{}', now())",
                ["home", "product", "newsletter"][rng.below(3) as usize]
            ),
            Self::CartPrices => write!(
                sql,
                "SELECT id, price, stock FROM products WHERE id IN ({product}, {}, {})",
                1 + rng.below(1_000),
                1 + rng.below(1_000)
            ),
            Self::ReserveStock => write!(
                sql,
                "UPDATE inventory SET reserved = reserved + {quantity} WHERE product_id = {product} AND \
                 warehouse_id = {}",
                1 + rng.below(4)
            ),
            Self::InsertOrder => write!(
                sql,
                "INSERT INTO orders (customer_id, total_cents, created_at) VALUES ({}, {}, now())",
                1 + rng.below(50_000),
                quantity * (500 + rng.below(20_000))
            ),
            Self::UserByEmail => write!(
                sql,
                "SELECT id, password_hash, failed_logins FROM users WHERE email = '{text}' AND active = true"
            ),
        };
        sql
    }

    /// The fingerprint of one execution.
    pub(crate) fn fingerprint(self, values: &Values<'_>, rng: &mut Rng) -> Fingerprint {
        plimsoll::fingerprint(&self.sql(values, rng))
    }
}

/// A string literal's contents, its quotes doubled.
struct Quoted<'a>(&'a str);

impl std::fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, part) in self.0.split('\'').enumerate() {
            if i > 0 {
                f.write_str("''")?;
            }
            f.write_str(part)?;
        }
        Ok(())
    }
}

/// xorshift64: a fast random stream without a dependency. Not for secrets.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

/// Advanced by every [`Rng::new`], so concurrent requests get distinct streams.
static SEEDS: AtomicU64 = AtomicU64::new(0x2545_f491_4f6c_dd1d);

impl Rng {
    /// A stream of its own: the next seed of a process-wide sequence, mixed (splitmix64).
    pub(crate) fn new() -> Self {
        Self::seeded(SEEDS.fetch_add(0x9e37_79b9_7f4a_7c15, Relaxed))
    }

    /// A reproducible stream.
    pub(crate) fn seeded(seed: u64) -> Self {
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        // xorshift's state must not be zero.
        Self((z ^ (z >> 31)).max(1))
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform in `[0, 1)`.
    pub(crate) fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `0..n` (`n` > 0).
    pub(crate) fn below(&mut self, n: u32) -> u32 {
        (self.uniform() * f64::from(n)) as u32
    }

    pub(crate) fn chance(&mut self, p: f64) -> bool {
        self.uniform() < p
    }

    /// Standard normal (Box–Muller).
    pub(crate) fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform();
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// 16 random bytes: a trace id.
    pub(crate) fn trace_id(&mut self) -> [u8; 16] {
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&self.next_u64().to_le_bytes());
        id[8..].copy_from_slice(&self.next_u64().to_le_bytes());
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use plimsoll::query::hints::Hints;

    /// The start of an incidents' cycle (with the cycle started at 0, as in tests)...
    const CYCLE_MS: u64 = 1_800_000_000_000;
    /// ...and a minute of it outside both incidents, followed by another.
    const CALM_MS: u64 = CYCLE_MS + 5 * MINUTE_MS;

    #[test]
    fn the_mean_latency_is_the_models() {
        let mut rng = Rng::seeded(11);
        const SAMPLES: u32 = 200_000;
        let sum: f64 = (0..SAMPLES).map(|_| pick_route(&mut rng).plan(&mut rng, CALM_MS).latency_seconds).sum();
        let (sampled, stated) = (sum / f64::from(SAMPLES), mean_seconds());
        assert!((sampled / stated - 1.0).abs() < 0.03, "sampled {sampled} s, stated {stated} s");
    }

    #[test]
    fn routes_are_in_order_and_shares_add_up() {
        assert_eq!(ROUTES.iter().map(|r| r.share).sum::<u32>(), 100);
        for (index, route) in ROUTES.iter().enumerate() {
            assert_eq!(route.id as usize, index, "{}", route.template);
            let payment = if route.id == RouteId::Checkout { PAYMENT_SHARE } else { 0.0 };
            let spent = route.queries.iter().map(|&(_, share)| share).sum::<f64>() + payment;
            assert!(spent <= 1.0 + 1e-9, "{}: queries and payment take {spent} of the latency", route.template);
        }
        assert!(!search_incident(CALM_MS) && search_incident(CYCLE_MS + SEARCH_MINUTE * MINUTE_MS));
        assert!(!payment_incident(CALM_MS) && payment_incident(CYCLE_MS + PAYMENT_MINUTE * MINUTE_MS));
    }

    #[test]
    fn paths_fold_into_templates() {
        for (path, route) in [
            ("/", RouteId::Home),
            ("/products/42", RouteId::Product),
            ("/products/not-a-number", RouteId::Product),
            ("/products/", RouteId::Unmatched),
            ("/products/1/reviews", RouteId::Unmatched),
            ("/search", RouteId::Search),
            ("/wp-admin/", RouteId::Unmatched),
            ("/.env", RouteId::Unmatched),
        ] {
            assert_eq!(RouteId::of(path), route, "{path}");
        }
        assert_eq!(RouteId::of("/products/7").template(), "/products/:id");
        assert_eq!(RouteId::of("/admin.php").template(), "unmatched");
    }

    /// The share of bad SLO events the shop's model gives over 100 s at 1,000 requests/s
    /// from `start_ms`: server errors, failed payments and answers over the threshold.
    fn bad_fraction(start_ms: u64) -> f64 {
        let threshold = crate::cli::state::DEMO_SLO_THRESHOLD_SECONDS;
        let mut rng = Rng::seeded(7);
        let (mut bad, mut total) = (0u32, 0u32);
        for i in 0..100_000u64 {
            let now_ms = start_ms + i;
            let route = pick_route(&mut rng);
            let plan = route.plan(&mut rng, now_ms);
            let failed_payment = route.id == RouteId::Checkout && !payment_succeeds(&mut rng, now_ms);
            total += 1;
            if plan.server_error.is_some() || failed_payment || plan.latency_seconds > threshold {
                bad += 1;
            }
        }
        f64::from(bad) / f64::from(total)
    }

    #[test]
    fn the_calm_shop_keeps_within_the_slo_and_incidents_burn_it() {
        let calm = bad_fraction(CALM_MS);
        assert!((0.002..0.01).contains(&calm), "calm: {calm}");
        let search = bad_fraction(CYCLE_MS + SEARCH_MINUTE * MINUTE_MS);
        assert!(search > 0.02, "search incident: {search}");
        let payment = bad_fraction(CYCLE_MS + PAYMENT_MINUTE * MINUTE_MS);
        assert!(payment > 0.02, "payment incident: {payment}");
    }

    #[test]
    fn queries_fold_into_their_shapes_and_give_index_hints() {
        let shapes = [
            Shape::FeaturedProducts,
            Shape::TopSellers,
            Shape::ProductById,
            Shape::Reviews,
            Shape::Search,
            Shape::LeadByEmail,
            Shape::InsertLead,
            Shape::CartPrices,
            Shape::ReserveStock,
            Shape::InsertOrder,
            Shape::UserByEmail,
        ];
        let mut rng = Rng::seeded(1);
        let mut hashes = Vec::new();
        for shape in shapes {
            let a = shape.fingerprint(&Values { product: 7, quantity: 1, text: "lamp" }, &mut rng);
            let b = shape.fingerprint(&Values { product: 913, quantity: 3, text: "o'brien@example.com" }, &mut rng);
            assert_eq!(a.hash(), b.hash(), "{shape:?}: {} vs {}", a.text(), b.text());
            assert!(!a.text().contains("lamp") && !a.text().contains("913"), "{}", a.text());
            hashes.push(a.hash());
        }
        hashes.sort_unstable();
        hashes.dedup();
        assert_eq!(hashes.len(), shapes.len(), "every shape has its own fingerprint");
        let search = Shape::Search.fingerprint(&Values { text: "lamp", ..Values::default() }, &mut rng);
        let hints: Hints<'_> = Hints::of(search.text());
        let index = hints.indexes().next().expect("an index hint for search");
        assert_eq!(index.to_string(), "products (category_id, name)");
    }

    #[test]
    fn seeded_streams_are_reproducible_and_fresh_ones_differ() {
        assert_eq!(Rng::seeded(3).next_u64(), Rng::seeded(3).next_u64());
        assert_ne!(Rng::new().next_u64(), Rng::new().next_u64());
        let mut rng = Rng::seeded(9);
        assert!((0..1_000).all(|_| rng.below(10) < 10));
    }
}
