//! Response bodies: small fixed ones, and `/metrics` streamed from the core's resumable
//! renderer through pooled buffers.
//!
//! A scrape takes one buffer of `render_buffer_bytes` from the [`BufferPool`] and renders
//! the exposition into it chunk by chunk: each chunk is handed to hyper as a [`Bytes`]
//! view of the buffer, hyper copies it into its connection's write buffer (the exporter
//! sets `writev(false)`, so hyper flattens instead of queueing) and drops the view, and the
//! next chunk reclaims the same allocation ([`BytesMut::try_reclaim`]). When the scrape
//! ends the buffer goes back to the pool. Steady-state scrapes therefore allocate no
//! buffer at all, and one scrape holds one buffer however large the registry.

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use plimsoll_core::{RenderError, Renderer};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

/// Render buffers kept for reuse: at most one per connection the exporter may hold open,
/// since a connection serves one scrape at a time.
#[derive(Debug)]
pub(crate) struct BufferPool {
    free: Mutex<Vec<BytesMut>>,
    buffer_len: usize,
    max_free: usize,
}

impl BufferPool {
    /// A pool of buffers of `buffer_len` bytes keeping at most `max_free` of them. The list
    /// itself is allocated now; buffers are allocated on first need.
    pub(crate) fn new(buffer_len: usize, max_free: usize) -> Self {
        Self { free: Mutex::new(Vec::with_capacity(max_free)), buffer_len, max_free }
    }

    pub(crate) fn buffer_len(&self) -> usize {
        self.buffer_len
    }

    fn take(&self) -> BytesMut {
        let reused = self.free.lock().unwrap_or_else(PoisonError::into_inner).pop();
        reused.unwrap_or_else(|| BytesMut::zeroed(self.buffer_len))
    }

    fn put(&self, mut buf: BytesMut) {
        buf.clear();
        // A buffer hyper still holds a view of cannot be reused whole: let it go.
        if !buf.try_reclaim(self.buffer_len) {
            return;
        }
        let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        if free.len() < self.max_free {
            free.push(buf);
        }
    }
}

/// A scrape in progress: the renderer and its buffer.
pub(crate) struct MetricsStream<const F: usize> {
    renderer: Renderer<'static, F>,
    buf: BytesMut,
    /// The first chunk, rendered before the response head so a failure is a 500.
    first: Option<Bytes>,
    pool: Arc<BufferPool>,
    /// Text sent after the exposition: a `prometheus` crate registry's.
    #[cfg(feature = "prometheus")]
    tail: Option<Bytes>,
}

impl<const F: usize> MetricsStream<F> {
    /// Takes a buffer and renders the first chunk.
    pub(crate) fn start(renderer: Renderer<'static, F>, pool: Arc<BufferPool>) -> Result<Self, RenderError> {
        let mut stream = Self {
            renderer,
            buf: pool.take(),
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

    /// Renders the next chunk into the buffer, reclaiming it from the previous chunk.
    fn next_chunk(&mut self) -> Result<Option<Bytes>, RenderError> {
        if self.renderer.is_done() {
            #[cfg(feature = "prometheus")]
            return Ok(self.tail.take());
            #[cfg(not(feature = "prometheus"))]
            return Ok(None);
        }
        let len = self.pool.buffer_len();
        self.buf.clear();
        if !self.buf.try_reclaim(len) {
            // hyper still holds the previous chunk (it never does with a flattening write
            // buffer): render into a fresh buffer rather than wait.
            self.buf = BytesMut::zeroed(len);
        }
        self.buf.resize(len, 0);
        let n = self.renderer.render(&mut self.buf)?;
        Ok((n > 0).then(|| self.buf.split_to(n).freeze()))
    }

    fn is_done(&self) -> bool {
        #[cfg(feature = "prometheus")]
        if self.tail.is_some() {
            return false;
        }
        self.first.is_none() && self.renderer.is_done()
    }
}

impl<const F: usize> Drop for MetricsStream<F> {
    fn drop(&mut self) {
        self.pool.put(core::mem::take(&mut self.buf));
    }
}

impl<const F: usize> core::fmt::Debug for MetricsStream<F> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MetricsStream").field("renderer", &self.renderer).finish_non_exhaustive()
    }
}

/// A response body.
///
/// The scrape variant is large (the renderer's state); boxing it would cost an
/// allocation per scrape, while hyper keeps a connection's body in one box that it reuses
/// for every response, so the size is paid once per connection.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // See above: inline on purpose.
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
