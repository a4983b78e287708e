//! Plimsoll's core on a microcontroller: an nRF52840 image that keeps its metrics in
//! `static`s, records into them from an embassy timer task and renders the Prometheus
//! exposition into a fixed 1 KiB buffer.
//!
//! It stands in for a sensor node: every 100 ms it "reads a sensor" (a pseudo-random
//! latency and outcome, so the image needs no board wiring) and records the read into a
//! labelled counter, a latency histogram, a gauge, a request-rate window and a latency
//! SLO, with the time from `EmbassyClock`. Every 10 s it renders the whole exposition,
//! chunk by chunk, and logs its size and the SLO's figures over defmt.
//!
//! Every byte the metrics use is in the statics below, so the linker places it in
//! `.bss`/`.data` and `size.sh` reads it back from the image; their sizes are also
//! computed at compile time and logged at boot.
#![no_std]
#![no_main]

use defmt::{error, info, warn};
use embassy_executor::Spawner;
use embassy_time::{Duration, Ticker};
use plimsoll_core::{
    Clock, Counter, EmbassyClock, Family, Format, Gauge, GoodEvent, Histogram, RateWindow, Registry, Renderer, Slo,
    SloWindow, Unlabelled,
};
use {defmt_rtt as _, panic_probe as _};

/// Read latencies in seconds: schema 2 (8.6 % relative error) over (1 ms, 128 s], 68
/// buckets, 592 bytes a series (a `LatencyHistogram` is 3,504).
type ReadLatency = Histogram<2, -10, 68>;

static REGISTRY: Registry<4> = Registry::new();
static SENSOR_READS: Family<Counter, 2, 8, 16> =
    Family::new("sensor_reads", "Sensor reads by sensor and outcome.", ["sensor", "outcome"]);
static READ_DURATION: Family<ReadLatency, 1, 2, 16> =
    Family::new("sensor_read_duration_seconds", "Sensor read latency.", ["sensor"]).unit("seconds");
static TX_QUEUE_DEPTH: Unlabelled<Gauge> = Unlabelled::new("tx_queue_depth", "Frames waiting to be sent.");
/// Reads per second over up to the last hour (10-second slots); not exported, logged.
static READ_RATE: RateWindow = RateWindow::new();
/// 99 % of reads within 50 ms (a timed-out read is bad whatever its latency).
static READ_SLO: Slo = Slo::new("sensor_read", 0.99, GoodEvent::LatencyAtMost(0.050));

/// Bytes of RAM the statics above take, known before the image is built.
const METRICS_RAM: usize = Registry::<4>::FOOTPRINT
    + Family::<Counter, 2, 8, 16>::FOOTPRINT
    + Family::<ReadLatency, 1, 2, 16>::FOOTPRINT
    + Unlabelled::<Gauge>::FOOTPRINT
    + RateWindow::FOOTPRINT
    + Slo::<361, 721>::FOOTPRINT;
// The budget this image gives its metrics: a larger family or window fails the build, not the board.
const _: () = assert!(METRICS_RAM <= 32 * 1024, "the metrics outgrew their 32 KiB of RAM");

const TICK: Duration = Duration::from_millis(100);
/// Ticks between two renders: 10 s.
const RENDER_EVERY: u32 = 100;
/// The render buffer; `register` warns if a line could be longer (`Registry::max_line_len`).
const RENDER_BUF_LEN: usize = 1024;
const SENSORS: [&str; 2] = ["bme280", "sht41"];

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    // Starts the RTC1 time driver behind `embassy_time` and so behind `EmbassyClock`.
    let _peripherals = embassy_nrf::init(Default::default());
    log_footprints();
    if !register() {
        return;
    }
    match metrics_task() {
        Ok(token) => spawner.spawn(token),
        Err(e) => error!("cannot spawn the metrics task: {}", e),
    }
}

fn log_footprints() {
    info!(
        "registry {=usize} B, sensor_reads {=usize} B",
        Registry::<4>::FOOTPRINT,
        Family::<Counter, 2, 8, 16>::FOOTPRINT
    );
    info!(
        "sensor_read_duration_seconds {=usize} B, tx_queue_depth {=usize} B",
        Family::<ReadLatency, 1, 2, 16>::FOOTPRINT,
        Unlabelled::<Gauge>::FOOTPRINT
    );
    info!("rate window {=usize} B, slo {=usize} B", RateWindow::FOOTPRINT, Slo::<361, 721>::FOOTPRINT);
    info!("metrics RAM in statics: {=usize} B", METRICS_RAM);
    // The renderer's cursor and one histogram reading: on the stack, only while rendering.
    info!("renderer {=usize} B on the stack", core::mem::size_of::<Renderer<'static, 4>>());
}

/// Registers the families and checks the SLO; logs the core's typed errors.
fn register() -> bool {
    let families: [&'static dyn plimsoll_core::Exposable; 3] = [&SENSOR_READS, &READ_DURATION, &TX_QUEUE_DEPTH];
    for family in families {
        if let Err(e) = REGISTRY.register(family) {
            error!("register: {}", e);
            return false;
        }
    }
    if let Err(e) = READ_SLO.validate() {
        error!("slo: {}", e);
        return false;
    }
    let longest = REGISTRY.max_line_len();
    if longest > RENDER_BUF_LEN {
        warn!("a line may need {=usize} B, more than the {=usize} B buffer", longest, RENDER_BUF_LEN);
    }
    info!("registered {=usize} families, {=usize} B in all", REGISTRY.len(), REGISTRY.footprint());
    true
}

#[embassy_executor::task]
async fn metrics_task() {
    let clock = EmbassyClock;
    let mut sensor = FakeSensor::new(0x2545_f491);
    // Held across awaits, so it lives in the task's static storage (`.bss`), not on the stack.
    let mut buf = [0u8; RENDER_BUF_LEN];
    let mut ticker = Ticker::every(TICK);
    let mut ticks = 0u32;
    loop {
        ticker.next().await;
        record(&mut sensor, clock.now_ms());
        ticks += 1;
        if ticks % RENDER_EVERY == 0 {
            report(&mut buf, clock.now_ms());
        }
    }
}

/// One simulated read of each sensor, recorded everywhere it counts.
fn record(sensor: &mut FakeSensor, now_ms: u64) {
    for name in SENSORS {
        let read = sensor.read();
        let outcome = if read.timed_out { "timeout" } else { "ok" };
        SENSOR_READS.with_label_values(&[name, outcome]).inc();
        READ_DURATION.with_label_values(&[name]).record(read.seconds);
        READ_RATE.inc(now_ms);
        if read.timed_out {
            READ_SLO.record(now_ms, false);
        } else {
            READ_SLO.record_latency(now_ms, read.seconds);
        }
    }
    TX_QUEUE_DEPTH.set(i64::from(sensor.next() % 8));
}

/// Renders the exposition into the fixed buffer, chunk by chunk, and logs what it took.
fn report(buf: &mut [u8; RENDER_BUF_LEN], now_ms: u64) {
    let mut renderer = REGISTRY.renderer(Format::Prometheus);
    let (mut bytes, mut chunks) = (0usize, 0usize);
    while !renderer.is_done() {
        match renderer.render(buf) {
            // A real node would send `buf[..n]` here (UART, BLE, a socket).
            Ok(n) => {
                bytes += n;
                chunks += 1;
            }
            Err(e) => {
                error!("render: {}", e);
                return;
            }
        }
    }
    info!("exposition: {=usize} B in {=usize} chunks of at most {=usize} B", bytes, chunks, RENDER_BUF_LEN);
    let rate = READ_RATE.rate_per_second(now_ms, 60_000).unwrap_or(0.0);
    let report = READ_SLO.report(now_ms);
    info!(
        "reads/s over 1 min: {=f64}, slo 5m: {}, availability: {}, alerts: {}",
        rate,
        report.events(SloWindow::M5),
        report.availability(SloWindow::M5),
        report.alerts()
    );
}

/// A simulated sensor read.
struct Read {
    seconds: f64,
    timed_out: bool,
}

/// Pseudo-random reads (xorshift32): 2 to 33 ms mostly, one in 64 slow (80 ms), one in
/// 128 timed out.
struct FakeSensor(u32);

impl FakeSensor {
    const fn new(seed: u32) -> Self {
        Self(seed)
    }

    fn next(&mut self) -> u32 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.0 = x;
        x
    }

    fn read(&mut self) -> Read {
        let r = self.next();
        let ms = match r % 128 {
            0 => 250,
            1 | 2 => 80,
            _ => 2 + (r >> 8) % 32,
        };
        Read { seconds: f64::from(ms) / 1_000.0, timed_out: r % 128 == 0 }
    }
}
