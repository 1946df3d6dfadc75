//! Rendering the sample contract (fixtures/sample-contract.toml) to PDF: layout, font subsetting,
//! compression and serialisation. `cargo bench --bench documents`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use virtual_window::domain::contract::ContractData;
use virtual_window::pdf::font::Font;
use virtual_window::services::documents::{CONTRACT_TEMPLATE, render_contract};

fn contract(c: &mut Criterion) {
    let font = Font::bundled();
    let data: ContractData =
        toml::from_str(&std::fs::read_to_string("fixtures/sample-contract.toml").unwrap()).unwrap();
    let probe = render_contract(
        &font,
        CONTRACT_TEMPLATE,
        &data,
        "https://window.example",
        "2026-11-28T10:00:00+08:00",
    )
    .unwrap();
    eprintln!(
        "sample contract: {} pages, {} bytes",
        probe.pages,
        probe.pdf.len()
    );
    let mut g = c.benchmark_group("documents");
    g.throughput(Throughput::Elements(1));
    g.bench_function("sample_contract", |b| {
        b.iter(|| {
            render_contract(
                &font,
                CONTRACT_TEMPLATE,
                &data,
                "https://window.example",
                "2026-11-28T10:00:00+08:00",
            )
            .unwrap()
        })
    });
    // The font subset alone, for the same glyph set.
    let text = String::from_utf8_lossy(CONTRACT_TEMPLATE.as_bytes()).into_owned();
    let glyphs: std::collections::BTreeSet<u16> =
        text.chars().filter_map(|ch| font.glyph(ch)).collect();
    g.bench_function("subset_only", |b| {
        b.iter(|| font.subset_fresh(&glyphs).unwrap())
    });
    g.finish();
}

criterion_group!(benches, contract);
criterion_main!(benches);
