//! The dead-letter page's HTML, server-rendered with `maud` (which escapes every value: bodies
//! and headers of dead letters are untrusted input).

use crate::groups::Group;
use crate::letter::DeadLetter;
use crate::print::{table_json, value_text};
use crate::when;
use maud::{DOCTYPE, Markup, PreEscaped, html};
use std::time::SystemTime;

/// No script, styles inline, forms only to this server, never framed.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:0 2em 2em;color:#222}\
header{display:flex;gap:1.5em;align-items:baseline;border-bottom:1px solid #ccc;margin-bottom:1em}\
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #eee;padding:4px 8px;\
text-align:left;vertical-align:top}th{background:#f6f6f6}.notice{background:#e8f5e9;padding:8px;\
border-left:4px solid #43a047}.problem{background:#fdecea;padding:8px;border-left:4px solid #e53935}\
.letter{border:1px solid #ddd;border-radius:4px;padding:8px 12px;margin:12px 0}\
pre{background:#f6f8fa;padding:8px;overflow:auto;max-height:24em}\
form.inline{display:inline}button{margin-right:6px}code{font-size:13px}\
dl{display:grid;grid-template-columns:max-content auto;gap:2px 12px}dt{color:#666}dd{margin:0}";

/// `/queue?name=…`, `/group?fingerprint=…` and the like, the value encoded.
#[must_use]
pub fn link(path: &str, key: &str, value: &str) -> String {
    let query = serde_urlencoded::to_string([(key, value)]).unwrap_or_default();
    format!("{path}?{query}")
}

/// The frame of every page: the title, the navigation, a notice or problem line, the content.
#[must_use]
pub fn layout(title: &str, vhost: &str, notice: Option<&str>, content: &Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { (title) " · orderflow dead letters" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header {
                    h1 { a href="/" { "orderflow dead letters" } }
                    span { "vhost " code { (vhost) } }
                }
                @if let Some(notice) = notice {
                    p.notice role="status" { (notice) }
                }
                (content)
            }
        }
    }
}

/// The front page: every dead-letter queue with its count, then the failure groups.
#[must_use]
pub fn overview(queues: &[(String, u32)], groups: &[Group], now: SystemTime) -> Markup {
    let seen =
        |at: Option<SystemTime>| at.map_or_else(|| "-".to_owned(), |at| when::human(at, now));
    html! {
        h2 { "Failure groups" }
        @if groups.is_empty() {
            p { "No dead letters." }
        } @else {
            table {
                tr { th { "Group" } th { "Dead letters" } th { "Queues" } th { "Error type" }
                     th { "Example error" } th { "First seen" } th { "Last seen" } th {} }
                @for group in groups {
                    tr {
                        td { a href=(link("/group", "fingerprint", &group.fingerprint)) {
                            code { (group.fingerprint) } } }
                        td { (group.count) }
                        td { @for queue in &group.queues { code { (queue) } " " } }
                        td { (group.error_type.as_deref().unwrap_or("-")) }
                        td { (group.example_error.as_deref().unwrap_or("-")) }
                        td { (seen(group.first_seen)) }
                        td { (seen(group.last_seen)) }
                        td { (action_button("Replay group", "replay-group", &[("group", &group.fingerprint)])) }
                    }
                }
            }
        }
        h2 { "Dead-letter queues" }
        @if queues.is_empty() {
            p { "No dead-letter queues in this vhost." }
        } @else {
            table {
                tr { th { "Queue" } th { "Dead letters" } }
                @for (queue, count) in queues {
                    tr {
                        td { a href=(link("/queue", "name", queue)) { code { (queue) } } }
                        td { (count) }
                    }
                }
            }
        }
    }
}

/// A button that asks `/confirm` whether to run `action` on `fields`.
fn action_button(label: &str, action: &str, fields: &[(&str, &str)]) -> Markup {
    html! {
        form.inline method="get" action="/confirm" {
            input type="hidden" name="action" value=(action);
            @for (name, value) in fields {
                input type="hidden" name=(name) value=(value);
            }
            button type="submit" { (label) }
        }
    }
}

/// Dead letters with their failure record, headers and body, each with its actions; `note`
/// says how many of how many are shown.
#[must_use]
pub fn letters(heading: &str, letters: &[DeadLetter], note: &str, now: SystemTime) -> Markup {
    html! {
        h2 { (heading) }
        p { (note) }
        @for letter in letters {
            (one_letter(letter, now))
        }
    }
}

fn one_letter(letter: &DeadLetter, now: SystemTime) -> Markup {
    let id = letter.message_id.as_deref().unwrap_or("");
    let fields = [("queue", letter.queue.as_str()), ("id", id)];
    let headers = table_json(&letter.headers);
    html! {
        section.letter data-message-id=(id) {
            dl {
                dt { "Order" } dd { code { (letter.correlation_id.as_deref().unwrap_or("-")) } }
                dt { "Event" } dd { (letter.kind.as_deref().unwrap_or("-")) }
                dt { "Message id" } dd { code { (id) } }
                dt { "Queue" } dd { code { (letter.queue) } }
                dt { "Why" } dd { (letter.error_kind().unwrap_or_else(|| "-".to_owned()))
                    @if let Some(kind) = letter.error_type() { " · " (kind) } }
                dt { "Error" } dd { (letter.error().unwrap_or_else(|| "-".to_owned())) }
                @for cause in letter.causes() { dt { "Caused by" } dd { (cause) } }
                dt { "Failed" } dd { (letter.failed_at().map_or_else(|| "-".to_owned(), |at| when::human(at, now))) }
                dt { "Group" } dd { a href=(link("/group", "fingerprint", &letter.fingerprint())) {
                    code { (letter.fingerprint()) } } }
            }
            details {
                summary { "Headers" }
                table {
                    @if let Some(map) = headers.as_object() {
                        @for (name, value) in map {
                            tr { th { code { (name) } } td { code { (value_line(value)) } } }
                        }
                    }
                }
            }
            pre.body { (pretty_body(&letter.body)) }
            @if !id.is_empty() {
                (action_button("Replay", "replay", &fields))
                form.inline method="get" action="/edit" {
                    input type="hidden" name="queue" value=(letter.queue);
                    input type="hidden" name="id" value=(id);
                    button type="submit" { "Edit and retry" }
                }
                (action_button("Delete", "delete", &fields))
            } @else {
                p { "No message id: act on it with the CLI's filters." }
            }
        }
    }
}

fn value_line(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// The body as indented JSON when it is JSON, else as text.
#[must_use]
pub fn pretty_body(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|json| serde_json::to_string_pretty(&json).ok())
        .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned())
}

/// "Do this?" with what it will do, a Confirm button posting `fields` and a way back.
#[must_use]
pub fn confirm(question: &str, detail: &Markup, fields: &[(&str, &str)], token: &str) -> Markup {
    html! {
        h2 { (question) }
        (detail)
        form method="post" action="/act" {
            input type="hidden" name=(super::csrf::FIELD) value=(token);
            @for (name, value) in fields {
                input type="hidden" name=(name) value=(value);
            }
            button type="submit" { "Confirm" }
            " "
            a href="/" { "Cancel" }
        }
    }
}

/// The edit form: the body in a text area, posted for a confirmation (nothing is sent yet).
#[must_use]
pub fn edit(letter: &DeadLetter, body: &str, problem: Option<&str>, token: &str) -> Markup {
    let id = letter.message_id.as_deref().unwrap_or("");
    html! {
        h2 { "Edit and retry " code { (id) } }
        p { "From " code { (letter.queue) } "; the edited body must be JSON and, for "
            (letter.kind.as_deref().unwrap_or("an unknown event")) ", that event. The dead letter "
            "is removed only once the edited copy is confirmed." }
        @if let Some(problem) = problem {
            p.problem role="alert" { (problem) }
        }
        form method="post" action="/edit" {
            input type="hidden" name=(super::csrf::FIELD) value=(token);
            input type="hidden" name="action" value="edit";
            input type="hidden" name="queue" value=(letter.queue);
            input type="hidden" name="id" value=(id);
            textarea name="body" rows="20" cols="100" { (body) }
            p { button type="submit" { "Review" } " " a href="/" { "Cancel" } }
        }
    }
}

/// What went wrong, for an error page.
#[must_use]
pub fn problem(message: &str) -> Markup {
    html! {
        p.problem role="alert" { (message) }
        p { a href="/" { "Back to the failure groups" } }
    }
}

/// One header value as a line (for the confirmation of a single dead letter).
#[must_use]
pub fn summary(letter: &DeadLetter) -> Markup {
    html! {
        dl {
            dt { "Order" } dd { code { (letter.correlation_id.as_deref().unwrap_or("-")) } }
            dt { "Event" } dd { (letter.kind.as_deref().unwrap_or("-")) }
            dt { "Error" } dd { (letter.error().unwrap_or_else(|| "-".to_owned())) }
            @if let Some(value) = letter.headers.inner().get("retry-count") {
                dt { "Retries" } dd { (value_text(value)) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::letter::tests::letter;
    use broker::headers;

    #[test]
    fn a_hostile_body_and_header_are_shown_as_text_never_as_markup() {
        let mut hostile = letter(&[(headers::ERROR, "<img src=x onerror=alert(1)>")]);
        hostile.body = br#"<script>alert("body")</script>"#.to_vec();
        hostile.message_id = Some("m\"><script>".to_owned());
        let page = letters("Dead letters", &[hostile], "1 of 1", SystemTime::now()).into_string();
        assert!(!page.contains("<script>"), "{page}");
        assert!(!page.contains("<img"), "{page}");
        assert!(page.contains("&lt;script&gt;alert(&quot;body&quot;)&lt;/script&gt;"));
        assert!(page.contains("&lt;img src=x onerror=alert(1)&gt;"));
    }

    #[test]
    fn a_json_body_is_indented_and_any_other_is_shown_as_it_is() {
        assert_eq!(pretty_body(br#"{"a":1}"#), "{\n  \"a\": 1\n}");
        assert_eq!(pretty_body(b"not json"), "not json");
    }
}
