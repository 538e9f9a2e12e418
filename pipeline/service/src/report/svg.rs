//! Small server-side charts: horizontal bars as inline SVG, readable in a mail client with
//! no scripts and no fonts beyond the reader's own. Values are only drawn here: the
//! figures in the tables beside them are the exact decimals.

use super::esc;

/// One bar: its label, its length (in the chart's unit) and the text printed after it.
pub struct Bar {
    pub label: String,
    pub value: f64,
    pub text: String,
}

/// A vertical reference line, e.g. the 100% target.
pub struct Marker {
    pub value: f64,
    pub label: String,
}

const WIDTH: f64 = 640.0;
const LABEL: f64 = 150.0;
const VALUE: f64 = 130.0;
const ROW: f64 = 24.0;

/// Horizontal bars scaled to the largest of the values and markers.
pub fn bars(title: &str, bars: &[Bar], markers: &[Marker], colour: &str) -> String {
    let max = bars
        .iter()
        .map(|b| b.value)
        .chain(markers.iter().map(|m| m.value))
        .fold(0.0_f64, f64::max)
        .max(f64::MIN_POSITIVE);
    let plot = WIDTH - LABEL - VALUE;
    let height = 30.0 + ROW * bars.len().max(1) as f64 + 18.0;
    let x = |v: f64| LABEL + plot * (v.max(0.0) / max);
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" viewBox=\"0 0 {WIDTH} {height}\" role=\"img\" aria-label=\"{t}\" font-family=\"sans-serif\" font-size=\"12\">\n<title>{t}</title>\n<text x=\"0\" y=\"16\" font-weight=\"bold\">{t}</text>\n",
        t = esc(title)
    );
    for (i, b) in bars.iter().enumerate() {
        let y = 30.0 + ROW * i as f64;
        out.push_str(&format!(
            "<text x=\"{lx}\" y=\"{ty}\" text-anchor=\"end\">{label}</text>\n<rect x=\"{LABEL}\" y=\"{y}\" width=\"{w:.1}\" height=\"{h}\" fill=\"{colour}\"/>\n<text x=\"{vx:.1}\" y=\"{ty}\">{text}</text>\n",
            lx = LABEL - 6.0,
            ty = y + 15.0,
            label = esc(&b.label),
            w = x(b.value) - LABEL,
            h = ROW - 6.0,
            vx = x(b.value) + 4.0,
            text = esc(&b.text),
        ));
    }
    if bars.is_empty() {
        out.push_str(&format!(
            "<text x=\"{LABEL}\" y=\"45\" fill=\"#666\">-</text>\n"
        ));
    }
    let bottom = 30.0 + ROW * bars.len().max(1) as f64;
    for m in markers {
        let mx = x(m.value);
        out.push_str(&format!(
            "<line x1=\"{mx:.1}\" y1=\"24\" x2=\"{mx:.1}\" y2=\"{bottom}\" stroke=\"#333\" stroke-dasharray=\"4 3\"/>\n<text x=\"{mx:.1}\" y=\"{ly}\" text-anchor=\"middle\" fill=\"#333\">{label}</text>\n",
            ly = bottom + 14.0,
            label = esc(&m.label)
        ));
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_largest_value_and_escape_labels() {
        let svg = bars(
            "达成率 <%>",
            &[
                Bar {
                    label: "华东".into(),
                    value: 50.0,
                    text: "50.0%".into(),
                },
                Bar {
                    label: "A&B".into(),
                    value: 100.0,
                    text: "100.0%".into(),
                },
            ],
            &[Marker {
                value: 100.0,
                label: "100%".into(),
            }],
            "#2e86c1",
        );
        assert!(svg.contains("<title>达成率 &lt;%&gt;</title>"));
        assert!(svg.contains("A&amp;B"));
        // 640 - 150 - 130 = 360 px for 100.
        assert!(svg.contains("width=\"360.0\""), "{svg}");
        assert!(svg.contains("width=\"180.0\""), "{svg}");
    }
}
