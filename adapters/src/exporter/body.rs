//! Response bodies: small fixed ones, and `/metrics` streamed from the core's resumable
//! renderer through pooled buffers.
//!
//! A scrape takes a [`Scrape`] from the [`ScrapePool`]: a box holding the renderer's state
//! (a few KiB: the histogram reading and `le` labels it reuses) and the scrape's render
//! buffers of `render_buffer_bytes` each. It renders the exposition chunk by chunk, each
//! chunk a [`Bytes`] view of one buffer that hyper queues and writes with the others in one
//! vectored write, dropping each view once written. The next chunk goes into a buffer no
//! view holds any more ([`BytesMut::try_reclaim`]). hyper asks for another chunk only while
//! it holds less than `B` bytes (its `max_buf_size`, the read buffer's limit), so a scrape
//! needs at most [`buffers_per_scrape`] buffers at once, `⌈B / R⌉ + 2` for
//! chunks of `R` bytes: 4 with the defaults. When the scrape ends, the box goes back to
//! the pool with its buffers. Steady-state scrapes therefore allocate nothing, one scrape
//! holds a fixed number of buffers however large the registry, and a connection between
//! scrapes holds neither the renderer's state nor a buffer.
//!
//! hyper's other write strategy, copying each chunk into its connection's write buffer,
//! would free a render buffer at once, but that buffer then doubles to 16 KiB on the first
//! scrape and stays so for the connection's life: 8 KiB more on every idle connection.

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use plimsoll_core::{RenderError, Renderer};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

/// Render buffers one scrape may hold at once: hyper asks for a chunk only while it holds
/// less than `write_limit` bytes, so it holds at most `⌈write_limit / buffer_len⌉ + 1`
/// chunks of nearly `buffer_len` bytes, and the renderer needs one more to render into. (A
/// chunk ends where the next line would not fit; the buffer is at least the longest line,
/// and normally many lines long.)
pub(crate) const fn buffers_per_scrape(buffer_len: usize, write_limit: usize) -> usize {
    let buffer_len = if buffer_len == 0 { 1 } else { buffer_len };
    write_limit.div_ceil(buffer_len).saturating_add(2)
}

/// One scrape's state, boxed so that a response body holds a pointer rather than the
/// renderer, and kept in the pool between scrapes.
struct Scrape<const F: usize> {
    renderer: Renderer<'static, F>,
    /// Render buffers: at most [`buffers_per_scrape`], allocated as needed.
    buffers: Vec<BytesMut>,
}

/// Scrapes kept for reuse: at most one per connection the exporter may hold open, since a
/// connection serves one scrape at a time.
pub(crate) struct ScrapePool<const F: usize> {
    /// Boxed: a scrape moves between the pool and a response body as a pointer.
    #[allow(clippy::vec_box)]
    free: Mutex<Vec<Box<Scrape<F>>>>,
    buffer_len: usize,
    buffers_per_scrape: usize,
    max_free: usize,
}

impl<const F: usize> ScrapePool<F> {
    /// A pool of scrapes rendering into buffers of `buffer_len` bytes, for a hyper that
    /// holds at most `write_limit` bytes before writing, keeping at most `max_free`
    /// scrapes. The list itself is allocated now; scrapes and buffers on first need.
    pub(crate) fn new(buffer_len: usize, write_limit: usize, max_free: usize) -> Self {
        Self {
            free: Mutex::new(Vec::with_capacity(max_free)),
            buffer_len,
            buffers_per_scrape: buffers_per_scrape(buffer_len, write_limit),
            max_free,
        }
    }

    pub(crate) fn buffer_len(&self) -> usize {
        self.buffer_len
    }

    fn take(&self, renderer: Renderer<'static, F>) -> Box<Scrape<F>> {
        let reused = self.free.lock().unwrap_or_else(PoisonError::into_inner).pop();
        match reused {
            Some(mut scrape) => {
                scrape.renderer = renderer;
                scrape
            }
            None => Box::new(Scrape { renderer, buffers: Vec::with_capacity(self.buffers_per_scrape) }),
        }
    }

    fn put(&self, scrape: Box<Scrape<F>>) {
        let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        if free.len() < self.max_free {
            free.push(scrape);
        }
    }
}

impl<const F: usize> core::fmt::Debug for ScrapePool<F> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ScrapePool")
            .field("buffer_len", &self.buffer_len)
            .field("buffers_per_scrape", &self.buffers_per_scrape)
            .field("max_free", &self.max_free)
            .finish_non_exhaustive()
    }
}

/// A scrape in progress.
pub(crate) struct MetricsStream<const F: usize> {
    /// `None` only once dropped.
    scrape: Option<Box<Scrape<F>>>,
    /// The first chunk, rendered before the response head so a failure is a 500.
    first: Option<Bytes>,
    pool: Arc<ScrapePool<F>>,
    /// Text sent after the exposition: a `prometheus` crate registry's.
    #[cfg(feature = "prometheus")]
    tail: Option<Bytes>,
}

impl<const F: usize> MetricsStream<F> {
    /// Takes a scrape from the pool and renders the first chunk.
    pub(crate) fn start(renderer: Renderer<'static, F>, pool: Arc<ScrapePool<F>>) -> Result<Self, RenderError> {
        let mut stream = Self {
            scrape: Some(pool.take(renderer)),
            first: None,
            pool,
            #[cfg(feature = "prometheus")]
            tail: None,
        };
        stream.first = stream.next_chunk()?;
        Ok(stream)
    }

    /// Sends `tail` after the exposition.
    #[cfg(feature = "prometheus")]
    pub(crate) fn append(mut self, tail: Bytes) -> Self {
        self.tail = (!tail.is_empty()).then_some(tail);
        self
    }

    /// Renders the next chunk into a buffer no earlier chunk still holds.
    fn next_chunk(&mut self) -> Result<Option<Bytes>, RenderError> {
        let Some(scrape) = self.scrape.as_deref_mut() else {
            return Ok(None);
        };
        if scrape.renderer.is_done() {
            #[cfg(feature = "prometheus")]
            return Ok(self.tail.take());
            #[cfg(not(feature = "prometheus"))]
            return Ok(None);
        }
        let len = self.pool.buffer_len;
        let free = scrape.buffers.iter_mut().position(|buf| {
            buf.clear();
            buf.try_reclaim(len)
        });
        let buf = match free {
            Some(i) => &mut scrape.buffers[i],
            None if scrape.buffers.len() < self.pool.buffers_per_scrape => {
                scrape.buffers.push(BytesMut::zeroed(len));
                let last = scrape.buffers.len() - 1;
                &mut scrape.buffers[last]
            }
            // hyper holds more chunks than it asks for today: let it keep this buffer
            // (freed once it writes the chunk) and render into a fresh one.
            None => {
                scrape.buffers[0] = BytesMut::zeroed(len);
                &mut scrape.buffers[0]
            }
        };
        buf.resize(len, 0);
        let n = scrape.renderer.render(buf)?;
        Ok((n > 0).then(|| buf.split_to(n).freeze()))
    }

    fn is_done(&self) -> bool {
        #[cfg(feature = "prometheus")]
        if self.tail.is_some() {
            return false;
        }
        self.first.is_none() && self.scrape.as_ref().is_none_or(|scrape| scrape.renderer.is_done())
    }
}

impl<const F: usize> Drop for MetricsStream<F> {
    fn drop(&mut self) {
        if let Some(scrape) = self.scrape.take() {
            self.pool.put(scrape);
        }
    }
}

impl<const F: usize> core::fmt::Debug for MetricsStream<F> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let renderer = self.scrape.as_ref().map(|scrape| &scrape.renderer);
        f.debug_struct("MetricsStream").field("renderer", &renderer).finish_non_exhaustive()
    }
}

/// A response body.
#[derive(Debug)]
pub(crate) enum ResponseBody<const F: usize> {
    /// No body (HEAD, 401, 404, 405).
    Empty,
    /// A small body sent in one frame.
    Full(Option<Bytes>),
    /// `/metrics`.
    Metrics(MetricsStream<F>),
}

/// A line of the exposition did not fit the render buffer mid-stream (a family with longer
/// lines was registered after the scrape's check): hyper aborts the response, and the
/// scraper sees a failed scrape rather than a truncated one.
#[derive(Debug)]
pub(crate) struct BodyError(RenderError);

impl core::fmt::Display for BodyError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "rendering /metrics failed: {}", self.0)
    }
}

impl std::error::Error for BodyError {}

impl<const F: usize> Body for ResponseBody<F> {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let chunk = match &mut *self {
            ResponseBody::Empty => Ok(None),
            ResponseBody::Full(bytes) => Ok(bytes.take()),
            ResponseBody::Metrics(stream) => match stream.first.take() {
                Some(first) => Ok(Some(first)),
                None => stream.next_chunk().map_err(BodyError),
            },
        };
        Poll::Ready(chunk.map(|c| c.map(Frame::data)).transpose())
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ResponseBody::Empty => true,
            ResponseBody::Full(bytes) => bytes.is_none(),
            ResponseBody::Metrics(stream) => stream.is_done(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ResponseBody::Empty => SizeHint::with_exact(0),
            ResponseBody::Full(bytes) => SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64)),
            ResponseBody::Metrics(_) => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{MetricsStream, ScrapePool};
    use plimsoll_core::{Counter, Family, Format, Registry};
    use std::sync::{Arc, Once};

    static REGISTRY: Registry<1> = Registry::new();
    static EVENTS: Family<Counter, 1, 16> = Family::new("events", "Events by shard.", ["shard"]);
    const SHARDS: [&str; 16] = [
        "s00", "s01", "s02", "s03", "s04", "s05", "s06", "s07", "s08", "s09", "s10", "s11", "s12", "s13", "s14", "s15",
    ];

    fn registry() -> &'static Registry<1> {
        static FILL: Once = Once::new();
        FILL.call_once(|| {
            REGISTRY.register(&EVENTS).expect("room for one family");
            for (n, shard) in (1u64..).zip(SHARDS) {
                EVENTS.with_label_values(&[shard]).inc_by(n * 1_000_003);
            }
        });
        &REGISTRY
    }

    /// The exposition rendered in one go.
    fn whole() -> Vec<u8> {
        let mut renderer = registry().renderer(Format::Prometheus);
        let mut buf = vec![0; 64 << 10];
        let mut out = Vec::new();
        while !renderer.is_done() {
            let n = renderer.render(&mut buf).expect("fits");
            out.extend_from_slice(&buf[..n]);
        }
        out
    }

    /// Pulls every chunk; `hold` keeps them all alive (a writer that never writes),
    /// otherwise each is dropped at once (one that writes everything at once).
    fn stream_all(pool: &Arc<ScrapePool<1>>, hold: bool) -> (Vec<u8>, usize) {
        let mut stream =
            MetricsStream::start(registry().renderer(Format::Prometheus), Arc::clone(pool)).expect("a first chunk");
        let mut out = Vec::new();
        let mut held = Vec::new();
        let mut chunks = 0;
        let mut next = stream.first.take();
        while let Some(chunk) = next {
            chunks += 1;
            out.extend_from_slice(&chunk);
            if hold {
                held.push(chunk);
            } else {
                drop(chunk);
            }
            next = stream.next_chunk().expect("renders");
        }
        assert!(stream.is_done());
        let buffers = stream.scrape.as_ref().map_or(0, |scrape| scrape.buffers.len());
        assert!(buffers <= pool.buffers_per_scrape, "{buffers} buffers");
        // Every held chunk still reads as it was sent.
        assert_eq!(held.concat(), if hold { out.clone() } else { Vec::new() });
        (out, chunks)
    }

    #[test]
    fn chunks_the_writer_still_holds_are_never_overwritten() {
        // Small buffers for a writer that asks for a chunk only when it holds none: two
        // buffers per scrape, while this writer holds every chunk.
        let pool = Arc::new(ScrapePool::new(128, 0, 1));
        assert_eq!(pool.buffers_per_scrape, 2);
        let (out, chunks) = stream_all(&pool, true);
        assert!(chunks > 4, "{chunks} chunks");
        assert_eq!(out, whole());
    }

    #[test]
    fn a_scrape_and_its_buffers_are_reused() {
        let pool = Arc::new(ScrapePool::new(128, 0, 1));
        let (out, _) = stream_all(&pool, false);
        assert_eq!(out, whole());
        let kept: *const _ = &**pool.free.lock().expect("unpoisoned").first().expect("returned to the pool");
        let (again, _) = stream_all(&pool, false);
        assert_eq!(again, out);
        let free = pool.free.lock().expect("unpoisoned");
        assert_eq!(free.len(), 1, "one scrape, taken and returned");
        assert!(std::ptr::eq(kept, &*free[0]), "the same scrape");
        // A writer that lets go of each chunk at once leaves one buffer in use.
        assert_eq!(free[0].buffers.len(), 1);
    }
}
