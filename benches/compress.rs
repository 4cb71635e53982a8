//! What compressing a webhook payload costs: the store compresses every record of 2 KiB or more
//! (`src/store/compress.rs`), and the webhook receiver writes one per delivery. lz4 is what the
//! store writes; zstd at its fastest level is what it wrote before (schema 2) and still reads.
//! `cargo bench --bench compress` prints the times and sizes (docs/store.md).

use std::hint::black_box;

use criterion::{criterion_group, Criterion};

const PAYLOAD: &str = include_str!("../tests/fixtures/github/pull_request.opened.json");

fn benches(c: &mut Criterion) {
    let text = PAYLOAD.as_bytes();
    let lz4 = lz4_flex::block::compress(text);
    let zstd = zstd::bulk::compress(text, 1).expect("zstd compresses");
    println!(
        "{} bytes of payload: lz4 {} bytes, zstd level 1 {} bytes",
        text.len(),
        lz4.len(),
        zstd.len()
    );
    c.bench_function("lz4 compress a 28 KB payload", |b| {
        b.iter(|| lz4_flex::block::compress(black_box(text)))
    });
    let mut zstd_context = zstd::bulk::Compressor::new(1).expect("zstd context");
    c.bench_function("zstd level 1 compress a 28 KB payload", |b| {
        b.iter(|| zstd_context.compress(black_box(text)))
    });
    c.bench_function("lz4 decompress a 28 KB payload", |b| {
        b.iter(|| lz4_flex::block::decompress(black_box(&lz4), text.len()))
    });
    c.bench_function("zstd decompress a 28 KB payload", |b| {
        b.iter(|| zstd::bulk::decompress(black_box(&zstd), text.len()))
    });
}

criterion_group!(compress, benches);

fn main() {
    compress();
}
