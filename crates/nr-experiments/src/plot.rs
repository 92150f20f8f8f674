//! The ablation plot: one bar group per configuration, a bar per metric with its 95% CI, drawn as
//! SVG (plotters) and rasterised to PNG (resvg).

use std::path::Path;

use anyhow::{Context, Result};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// One configuration's scores: (metric value, CI low, CI high) per metric of the plot.
#[derive(Debug, Clone, PartialEq)]
pub struct BarGroup {
    pub label: String,
    pub values: Vec<(f64, f64, f64)>,
}

/// Bar colours, one per metric (cycled beyond four).
const COLORS: [RGBColor; 4] = [
    RGBColor(66, 133, 244),
    RGBColor(244, 160, 0),
    RGBColor(15, 157, 88),
    RGBColor(219, 68, 55),
];

/// Characters per line of a group label.
const LABEL_CHARS: usize = 18;

/// A label cut into lines of at most `max` characters after its `,` and `+` separators (a longer
/// piece keeps a line of its own).
fn wrap_label(label: &str, max: usize) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut piece = String::new();
    for c in label.chars() {
        piece.push(c);
        if c == ',' || c == '+' {
            pieces.push(std::mem::take(&mut piece));
        }
    }
    pieces.push(piece);
    let mut lines: Vec<String> = Vec::new();
    for p in pieces.into_iter().filter(|p| !p.is_empty()) {
        match lines.last_mut() {
            Some(line)
                if !line.ends_with(',') && line.chars().count() + p.chars().count() <= max =>
            {
                line.push_str(&p)
            }
            _ => lines.push(p),
        }
    }
    lines
}

/// Draws the groups as an SVG document; `series` names the metrics of each group's values.
pub fn svg(groups: &[BarGroup], series: &[String], title: &str) -> Result<String> {
    let mut out = String::new();
    {
        let labels: Vec<Vec<String>> = groups
            .iter()
            .map(|g| wrap_label(&g.label, LABEL_CHARS))
            .collect();
        let widest = labels
            .iter()
            .flatten()
            .map(|l| l.chars().count())
            .max()
            .unwrap_or(0);
        let group_width = (7 * widest + 16).max(90);
        let width = (160 + group_width * groups.len()).max(480) as u32;
        let root = SVGBackend::with_string(&mut out, (width, 420)).into_drawing_area();
        root.fill(&WHITE)?;
        let n = groups.len() as f64;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(110)
            .y_label_area_size(48)
            .build_cartesian_2d(0.0..n, 0.0..1.0f64)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(0)
            .y_desc("score")
            .draw()?;
        // Each group spans 0.76 of its unit width, split evenly between the metrics.
        let step = 0.76 / series.len().max(1) as f64;
        for (s, name) in series.iter().enumerate() {
            let color = COLORS[s % COLORS.len()];
            let value = |g: &BarGroup| g.values.get(s).copied().unwrap_or((0.0, 0.0, 0.0));
            let bars = groups.iter().enumerate().map(|(i, g)| {
                let x0 = i as f64 + 0.12 + step * s as f64;
                Rectangle::new([(x0, 0.0), (x0 + step - 0.02, value(g).0)], color.filled())
            });
            chart
                .draw_series(bars)?
                .label(name.as_str())
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled())
                });
            let whiskers = groups.iter().enumerate().map(|(i, g)| {
                let (v, lo, hi) = value(g);
                let x = i as f64 + 0.12 + step * s as f64 + (step - 0.02) / 2.0;
                ErrorBar::new_vertical(x, lo, v, hi, BLACK.stroke_width(1), 6)
            });
            chart.draw_series(whiskers)?;
        }
        chart
            .configure_series_labels()
            .border_style(BLACK)
            .background_style(WHITE.mix(0.9))
            .draw()?;
        // Group labels under each pair of bars, wrapped to the group's width.
        let style = ("sans-serif", 12)
            .into_text_style(&root)
            .pos(Pos::new(HPos::Center, VPos::Top));
        for (i, lines) in labels.iter().enumerate() {
            let (x, y) = chart.backend_coord(&(i as f64 + 0.5, 0.0));
            for (k, line) in lines.iter().enumerate() {
                root.draw(&Text::new(
                    line.clone(),
                    (x, y + 6 + 14 * k as i32),
                    style.clone(),
                ))?;
            }
        }
        root.present()?;
    }
    Ok(out)
}

/// Sans-serif families tried, in order, for the PNG's text.
const SANS_SERIF: [&str; 6] = [
    "DejaVu Sans",
    "Liberation Sans",
    "Arial",
    "Helvetica",
    "Noto Sans",
    "FreeSans",
];

/// SVG rendering options with the system fonts, the generic `sans-serif` of the plot mapped to a
/// family this machine has: fontdb maps it to Arial, which most Linux machines lack, and text
/// whose font is missing is left out of the PNG.
fn render_options() -> resvg::usvg::Options<'static> {
    let mut options = resvg::usvg::Options::default();
    let db = options.fontdb_mut();
    db.load_system_fonts();
    let has = |family: &str| {
        db.faces()
            .any(|face| face.families.iter().any(|(name, _)| name == family))
    };
    let family = SANS_SERIF
        .iter()
        .find(|f| has(f))
        .map(|f| f.to_string())
        .or_else(|| {
            db.faces()
                .find_map(|face| face.families.first().map(|(name, _)| name.clone()))
        });
    match family {
        Some(family) => db.set_sans_serif_family(family),
        None => tracing::warn!(
            "no system font found: the PNG plot has no text (the SVG has it); install e.g. fonts-dejavu-core"
        ),
    }
    options
}

/// Writes `<stem>.svg` and `<stem>.png`.
pub fn write_plot(groups: &[BarGroup], series: &[String], title: &str, stem: &Path) -> Result<()> {
    let svg_text = svg(groups, series, title)?;
    crate::atomic_file::write_atomic(&stem.with_extension("svg"), svg_text.as_bytes())?;
    let options = render_options();
    let tree =
        resvg::usvg::Tree::from_str(&svg_text, &options).context("parsing the plot's SVG")?;
    let size = tree.size().to_int_size();
    let mut pixmap =
        resvg::tiny_skia::Pixmap::new(size.width(), size.height()).context("plot size")?;
    resvg::render(
        &tree,
        resvg::tiny_skia::Transform::default(),
        &mut pixmap.as_mut(),
    );
    let png = pixmap.encode_png().context("encoding the plot as PNG")?;
    crate::atomic_file::write_atomic(&stem.with_extension("png"), &png)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plot_has_one_bar_per_metric_and_group_and_a_png_of_the_svg_size() {
        let groups = vec![
            BarGroup {
                label: "align".into(),
                values: vec![(0.6, 0.55, 0.65), (0.4, 0.35, 0.45)],
            },
            BarGroup {
                label: "align+rank".into(),
                values: vec![(0.7, 0.66, 0.74), (0.5, 0.45, 0.55)],
            },
        ];
        let series = vec!["R@10".to_string(), "MRR@10".to_string()];
        let svg_text = svg(&groups, &series, "ablation").unwrap();
        assert!(
            svg_text.contains("align+rank")
                && svg_text.contains("R@10")
                && svg_text.contains("MRR@10")
        );
        let dir = tempfile::tempdir().unwrap();
        let stem = dir.path().join("ablation");
        write_plot(&groups, &series, "ablation", &stem).unwrap();
        let png = std::fs::read(stem.with_extension("png")).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        // IHDR width and height.
        let w = u32::from_be_bytes(png[16..20].try_into().unwrap());
        let h = u32::from_be_bytes(png[20..24].try_into().unwrap());
        assert_eq!((w, h), (480, 420));
    }

    #[test]
    fn labels_wrap_after_commas_and_plus_signs() {
        assert_eq!(
            wrap_label("kind=linear,use_terms=align+contrastive+rank", 18),
            vec!["kind=linear,", "use_terms=align+", "contrastive+rank"]
        );
        assert_eq!(wrap_label("raw_question", 18), vec!["raw_question"]);
        assert_eq!(
            wrap_label("a+b,c", 18),
            vec!["a+b,", "c"],
            "a comma always ends a line"
        );
    }

    #[test]
    fn the_png_has_the_plot_text_where_a_font_is_installed() {
        if render_options().fontdb.faces().next().is_none() {
            panic!(
                "no system font: install one (e.g. fonts-dejavu-core; .ci/run does) so the PNG plot has text"
            );
        }
        // Text only (no bars): any dark pixel of the PNG is a glyph of the caption or a label.
        let svg_text = r#"<svg xmlns="http://www.w3.org/2000/svg" width="200" height="40"><rect width="200" height="40" fill="white"/><text x="10" y="28" font-family="sans-serif" font-size="20" fill="black">Recall@10</text></svg>"#;
        let tree = resvg::usvg::Tree::from_str(svg_text, &render_options()).unwrap();
        let mut pixmap = resvg::tiny_skia::Pixmap::new(200, 40).unwrap();
        resvg::render(
            &tree,
            resvg::tiny_skia::Transform::default(),
            &mut pixmap.as_mut(),
        );
        let dark = pixmap.pixels().iter().filter(|p| p.red() < 128).count();
        assert!(
            dark > 100,
            "only {dark} dark pixels: the text was not drawn"
        );
    }
}
