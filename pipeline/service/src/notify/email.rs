//! Email over SMTP (implicit TLS, STARTTLS or plain), one message per alert transition with
//! a plain-text and an HTML part.

use std::time::Duration as StdDuration;

use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{Message, SmtpTransport, Transport};

use super::Outcome;
use super::message::AlertMessage;
use crate::config::notifiers::{EmailConfig, SmtpSecurity};

/// Why the SMTP connection could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum EmailSetupError {
    #[error("notifiers.email ca_file {path}: {source}")]
    CaFile {
        path: String,
        source: std::io::Error,
    },
    #[error("notifiers.email: {0}")]
    Tls(#[from] lettre::transport::smtp::Error),
}

/// The SMTP client the configuration describes.
pub fn transport(config: &EmailConfig) -> Result<SmtpTransport, EmailSetupError> {
    let mut builder = SmtpTransport::builder_dangerous(&config.host)
        .port(config.port())
        .timeout(Some(StdDuration::from_secs(30)));
    if config.security != SmtpSecurity::None {
        let mut params = TlsParameters::builder(config.host.clone());
        if let Some(path) = &config.ca_file {
            let pem = std::fs::read(path).map_err(|source| EmailSetupError::CaFile {
                path: path.display().to_string(),
                source,
            })?;
            params = params.add_root_certificate(Certificate::from_pem(&pem)?);
        }
        let params = params.build()?;
        builder = builder.tls(match config.security {
            SmtpSecurity::Tls => Tls::Wrapper(params),
            _ => Tls::Required(params),
        });
    }
    if let (Some(user), Some(password)) = (&config.username, &config.password) {
        builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
    }
    Ok(builder.build())
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `**bold**` and `[text](url)` inside one line, escaped.
fn inline_html(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    loop {
        let bold = rest.find("**");
        let link = rest.find('[');
        match (bold, link) {
            (Some(b), l) if l.is_none_or(|l| b < l) => {
                let after = &rest[b + 2..];
                match after.find("**") {
                    Some(end) => {
                        out.push_str(&esc(&rest[..b]));
                        out.push_str(&format!("<strong>{}</strong>", esc(&after[..end])));
                        rest = &after[end + 2..];
                    }
                    None => break,
                }
            }
            (_, Some(l)) => {
                let after = &rest[l + 1..];
                let parsed = after.find("](").and_then(|mid| {
                    let url_part = &after[mid + 2..];
                    url_part.find(')').map(|end| (mid, end))
                });
                match parsed {
                    Some((mid, end)) => {
                        let url = &after[mid + 2..mid + 2 + end];
                        out.push_str(&esc(&rest[..l]));
                        out.push_str(&format!(
                            "<a href=\"{}\">{}</a>",
                            esc(url),
                            esc(&after[..mid])
                        ));
                        rest = &after[mid + 3 + end..];
                    }
                    None => break,
                }
            }
            _ => break,
        }
    }
    out.push_str(&esc(rest));
    out
}

/// The messages' Markdown subset (bold, lists, links, rules) as an HTML page.
pub fn html(message: &AlertMessage, lang: &str) -> String {
    let mut body = String::new();
    let mut in_list = false;
    for line in message.markdown.lines() {
        let line = line.trim_end();
        if let Some(item) = line.strip_prefix("- ") {
            if !in_list {
                body.push_str("<ul>\n");
                in_list = true;
            }
            body.push_str(&format!("<li>{}</li>\n", inline_html(item)));
            continue;
        }
        if in_list {
            body.push_str("</ul>\n");
            in_list = false;
        }
        if line == "---" {
            body.push_str("<hr>\n");
        } else if !line.is_empty() {
            body.push_str(&format!("<p>{}</p>\n", inline_html(line)));
        }
    }
    if in_list {
        body.push_str("</ul>\n");
    }
    let colour = if message.red { "#c0392b" } else { "#b7950b" };
    format!(
        "<!doctype html>\n<html lang=\"{lang}\"><head><meta charset=\"utf-8\"><title>{}</title></head>\n<body style=\"font-family:sans-serif;border-left:6px solid {colour};padding-left:12px\">\n{body}</body></html>\n",
        esc(&message.title)
    )
}

/// A mail's envelope: the configured sender, the recipients, the subject.
fn envelope(
    config: &EmailConfig,
    subject: String,
    to: impl IntoIterator<Item = String>,
) -> Result<lettre::message::MessageBuilder, Outcome> {
    let from: Mailbox = config
        .from
        .parse()
        .map_err(|e| Outcome::Failed(format!("from `{}`: {e}", config.from)))?;
    let mut builder = Message::builder().from(from).subject(subject);
    for address in to {
        let mailbox = address
            .parse::<Mailbox>()
            .map_err(|e| Outcome::Failed(format!("recipient `{address}`: {e}")))?;
        builder = builder.to(mailbox);
    }
    Ok(builder)
}

/// Sends a built mail: refusals the server says are permanent are final.
fn deliver(transport: &SmtpTransport, email: &Message) -> Outcome {
    match transport.send(email) {
        Ok(_) => Outcome::Delivered,
        Err(e) if e.is_permanent() => Outcome::Failed(format!("SMTP refused: {e}")),
        Err(e) => Outcome::Retry(format!("SMTP: {e}")),
    }
}

/// Builds and sends one message to some recipients; blocking.
pub fn send(
    transport: &SmtpTransport,
    config: &EmailConfig,
    message: &AlertMessage,
    to: &[String],
    lang: &str,
) -> Outcome {
    let builder = match envelope(config, message.title.clone(), to.iter().cloned()) {
        Ok(b) => b.message_id(Some(format!("<{}@reconlight>", message.message_id))),
        Err(outcome) => return outcome,
    };
    let email = match builder.multipart(MultiPart::alternative_plain_html(
        message.markdown.clone(),
        html(message, lang),
    )) {
        Ok(m) => m,
        Err(e) => return Outcome::Failed(format!("the message cannot be built: {e}")),
    };
    deliver(transport, &email)
}

/// Mails a report: its HTML as the body, its CSV attached. The payload is the outbox
/// message's (`to`, `subject`, `html`, `csv`, `month`).
pub fn send_report(
    transport: &SmtpTransport,
    config: &EmailConfig,
    payload: &serde_json::Value,
) -> Outcome {
    let field = |name: &str| payload[name].as_str().unwrap_or("").to_string();
    let to = payload["to"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| a.as_str().unwrap_or("").to_string());
    let builder = match envelope(config, field("subject"), to) {
        Ok(b) => b,
        Err(outcome) => return outcome,
    };
    let csv_name = format!("monthly-{}.csv", field("month"));
    let body = MultiPart::mixed()
        .singlepart(SinglePart::html(field("html")))
        .singlepart(Attachment::new(csv_name).body(
            field("csv"),
            ContentType::parse("text/csv; charset=utf-8").expect("a valid content type"),
        ));
    let email = match builder.multipart(body) {
        Ok(m) => m,
        Err(e) => return Outcome::Failed(format!("the report mail cannot be built: {e}")),
    };
    deliver(transport, &email)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_becomes_escaped_html() {
        let m = AlertMessage {
            message_id: "m".into(),
            title: "t".into(),
            markdown:
                "**红灯 · 触发** <x>\n\n- 对象: HT-1\n\n[查看](https://r.example/a?b=1&c=2)\n"
                    .into(),
            red: true,
        };
        let h = html(&m, "zh-CN");
        assert!(
            h.contains("<p><strong>红灯 · 触发</strong> &lt;x&gt;</p>"),
            "{h}"
        );
        assert!(h.contains("<ul>\n<li>对象: HT-1</li>\n</ul>"), "{h}");
        assert!(
            h.contains("<a href=\"https://r.example/a?b=1&amp;c=2\">查看</a>"),
            "{h}"
        );
    }
}
