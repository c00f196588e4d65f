//! The load chart: achieved throughput and p99 latency against offered load, as a PNG.

use anyhow::Context;
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};
use std::path::Path;

/// One measured load point.
#[derive(Debug, Clone, Copy)]
pub struct LoadPoint {
    /// Orders per second offered.
    pub offered: f64,
    /// Orders per second achieved.
    pub achieved: f64,
    /// p99 latency in milliseconds.
    pub p99_ms: f64,
}

/// Where a sans-serif TrueType font is found on Debian-like systems.
const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

/// Draws `points` into a PNG at `path`: throughput on top, p99 (log scale) below.
///
/// # Errors
/// When the font is missing or the file cannot be written.
pub fn draw(path: &Path, points: &[LoadPoint], title: &str) -> anyhow::Result<()> {
    let font = std::fs::read(FONT)
        .with_context(|| format!("the chart needs the font {FONT} (fonts-dejavu-core)"))?;
    register_font(
        "sans-serif",
        FontStyle::Normal,
        Box::leak(font.into_boxed_slice()),
    )
    .map_err(|_| anyhow::anyhow!("{FONT} is not a usable font"))?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let max_x = points.iter().map(|p| p.offered).fold(1.0, f64::max) * 1.1;
    let max_y = points
        .iter()
        .map(|p| p.achieved.max(p.offered))
        .fold(1.0, f64::max)
        * 1.1;
    let max_p99 = points.iter().map(|p| p.p99_ms).fold(1.0, f64::max) * 2.0;
    let root = BitMapBackend::new(path, (900, 700)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(title, ("sans-serif", 22))?;
    let (top, bottom) = root.split_vertically(340);

    let mut throughput = ChartBuilder::on(&top)
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..max_x, 0.0..max_y)?;
    throughput
        .configure_mesh()
        .x_desc("offered load (orders/s)")
        .y_desc("achieved (orders/s)")
        .draw()?;
    throughput
        .draw_series(LineSeries::new(
            [(0.0, 0.0), (max_x, max_x)],
            BLACK.mix(0.3),
        ))?
        .label("offered = achieved")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLACK.mix(0.3)));
    throughput
        .draw_series(LineSeries::new(
            points.iter().map(|p| (p.offered, p.achieved)),
            BLUE.stroke_width(2),
        ))?
        .label("achieved")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLUE));
    throughput.draw_series(
        points
            .iter()
            .map(|p| Circle::new((p.offered, p.achieved), 4, BLUE.filled())),
    )?;
    throughput
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE)
        .draw()?;

    let mut latency = ChartBuilder::on(&bottom)
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..max_x, (1.0..max_p99).log_scale())?;
    latency
        .configure_mesh()
        .x_desc("offered load (orders/s)")
        .y_desc("p99 latency (ms, log)")
        .draw()?;
    latency.draw_series(LineSeries::new(
        points.iter().map(|p| (p.offered, p.p99_ms.max(1.0))),
        RED.stroke_width(2),
    ))?;
    latency.draw_series(
        points
            .iter()
            .map(|p| Circle::new((p.offered, p.p99_ms.max(1.0)), 4, RED.filled())),
    )?;
    root.present()?;
    Ok(())
}
