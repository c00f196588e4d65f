//! What each URL of the dead-letter page reads or does. Reading pages only look (dead letters
//! are handed back); `/confirm` and `POST /edit` ask; only `POST /act` changes anything.

use super::csrf::Token;
use super::pages::{self, link};
use crate::edit::{self, NewBody};
use crate::exit::Exit;
use crate::filter::Filter;
use crate::letter::DeadLetter;
use crate::print::error_line;
use crate::queues::DeadLetterQueue;
use crate::target::Target;
use crate::{dead_letters, groups, remove, replay};
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Router, middleware};
use maud::{Markup, html};
use serde::Deserialize;
use std::sync::Arc;
use std::time::SystemTime;

/// Dead letters shown per queue on one page.
const SHOWN: u32 = 50;

/// What every handler shares.
struct Ui {
    target: Target,
    token: Token,
}

type Shared = State<Arc<Ui>>;

/// The page's routes on `target`, forms carrying `token`.
pub fn router(target: Target, token: Token) -> Router {
    Router::new()
        .route("/", get(overview))
        .route("/queue", get(queue))
        .route("/group", get(group))
        .route("/confirm", get(confirm))
        .route("/edit", get(edit_form).post(review_edit))
        .route("/act", post(act))
        .layer(middleware::map_response(secured))
        .with_state(Arc::new(Ui { target, token }))
}

/// Headers on every response: no script, no framing, no caching, no sniffing.
async fn secured(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let set = |headers: &mut HeaderMap, name, value: &'static str| {
        headers.insert(name, HeaderValue::from_static(value));
    };
    set(
        headers,
        header::CONTENT_SECURITY_POLICY,
        pages::CONTENT_SECURITY_POLICY,
    );
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    // Not `no-referrer`: with it browsers send `Origin: null` on the forms' POSTs, which the
    // CSRF check refuses.
    set(headers, header::REFERRER_POLICY, "same-origin");
    set(headers, header::CACHE_CONTROL, "no-store");
    response
}

/// Runs a page on a blocking thread of its own: the CLI's operations hold scans across awaits
/// in async closures whose futures are not `Send`, and axum's handlers must be.
async fn off_thread<F>(page: impl FnOnce() -> F + Send + 'static) -> Response
where
    F: Future<Output = Response>,
{
    let runtime = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || runtime.block_on(page()))
        .await
        .unwrap_or_else(|err| {
            let message = format!("the page failed: {err}");
            (StatusCode::INTERNAL_SERVER_ERROR, message).into_response()
        })
}

/// A page, or the error that stopped it.
fn page(ui: &Ui, title: &str, notice: Option<&str>, content: anyhow::Result<Markup>) -> Response {
    match content {
        Ok(content) => pages::layout(title, &ui.target.vhost, notice, &content).into_response(),
        Err(err) => failure(ui, status_of(&err), &error_line(&err)),
    }
}

fn failure(ui: &Ui, status: StatusCode, message: &str) -> Response {
    let content = pages::problem(message);
    let body = pages::layout("Problem", &ui.target.vhost, None, &content);
    (status, body).into_response()
}

/// The HTTP status of a CLI error, by its exit code.
fn status_of(err: &anyhow::Error) -> StatusCode {
    match Exit::code_of(err) {
        Exit::NOTHING_MATCHED | Exit::NOT_FOUND => StatusCode::NOT_FOUND,
        Exit::USAGE => StatusCode::UNPROCESSABLE_ENTITY,
        Exit::UNREACHABLE => StatusCode::BAD_GATEWAY,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

#[derive(Debug, Deserialize)]
struct NoticeQuery {
    notice: Option<String>,
}

async fn overview(State(ui): Shared, Query(query): Query<NoticeQuery>) -> Response {
    off_thread(move || overview_page(ui, query)).await
}

async fn overview_page(ui: Arc<Ui>, query: NoticeQuery) -> Response {
    let content = async {
        let queues = dead_letters::list(&ui.target).await?;
        let found = groups::collect(&ui.target, None).await?;
        Ok(pages::overview(&queues, &found, SystemTime::now()))
    };
    page(
        &ui,
        "Failure groups",
        query.notice.as_deref(),
        content.await,
    )
}

#[derive(Debug, Deserialize)]
struct QueueQuery {
    name: String,
}

async fn queue(State(ui): Shared, Query(query): Query<QueueQuery>) -> Response {
    off_thread(move || queue_page(ui, query)).await
}

async fn queue_page(ui: Arc<Ui>, query: QueueQuery) -> Response {
    let content = async {
        let dlq = DeadLetterQueue::parse(&query.name)?;
        let shown = dead_letters::show(&ui.target, &dlq, &Filter::default(), SHOWN).await?;
        let note = format!(
            "{} of {} dead letters shown; showing leaves them in place.",
            shown.letters.len(),
            shown.present
        );
        Ok(pages::letters(
            &dlq.name,
            &shown.letters,
            &note,
            SystemTime::now(),
        ))
    };
    page(&ui, &query.name, None, content.await)
}

#[derive(Debug, Deserialize)]
struct GroupQuery {
    fingerprint: String,
}

async fn group(State(ui): Shared, Query(query): Query<GroupQuery>) -> Response {
    off_thread(move || group_page(ui, query)).await
}

async fn group_page(ui: Arc<Ui>, query: GroupQuery) -> Response {
    let content = async {
        let filter = Filter {
            fingerprint: Some(query.fingerprint.clone()),
            ..Filter::default()
        };
        let mut letters = Vec::new();
        for dlq in dead_letters::these_or_all(&ui.target, None).await? {
            letters.extend(
                dead_letters::show(&ui.target, &dlq, &filter, SHOWN)
                    .await?
                    .letters,
            );
        }
        let note = format!(
            "{} dead letters shown (at most {SHOWN} per queue); showing leaves them in place.",
            letters.len()
        );
        let replay = html! {
            form method="get" action="/confirm" {
                input type="hidden" name="action" value="replay-group";
                input type="hidden" name="group" value=(query.fingerprint);
                button type="submit" { "Replay group" }
            }
        };
        let heading = format!("Group {}", query.fingerprint);
        Ok(html! {
            (pages::letters(&heading, &letters, &note, SystemTime::now()))
            (replay)
        })
    };
    page(&ui, "Failure group", None, content.await)
}

/// What a button asks for, and (posted to `/act`) what is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum Action {
    /// One dead letter back to its queue.
    Replay,
    /// Every dead letter of a failure group back to its queue.
    ReplayGroup,
    /// One dead letter removed for good.
    Delete,
    /// One dead letter back to its queue with an edited body.
    Edit,
}

impl Action {
    fn as_str(self) -> &'static str {
        match self {
            Self::Replay => "replay",
            Self::ReplayGroup => "replay-group",
            Self::Delete => "delete",
            Self::Edit => "edit",
        }
    }
}

/// The fields of `/confirm` and `/act`; which are needed depends on the action.
#[derive(Debug, Deserialize)]
struct Request {
    action: Action,
    queue: Option<String>,
    id: Option<String>,
    group: Option<String>,
    body: Option<String>,
    #[serde(default)]
    csrf: String,
}

impl Request {
    fn one(&self) -> anyhow::Result<(DeadLetterQueue, &str)> {
        let (Some(queue), Some(id)) = (&self.queue, &self.id) else {
            return Err(Exit::usage("this action needs a queue and a message id").into());
        };
        Ok((DeadLetterQueue::parse(queue)?, id))
    }

    fn group(&self) -> anyhow::Result<Filter> {
        let group = self
            .group
            .clone()
            .ok_or_else(|| Exit::usage("this action needs a group"))?;
        Ok(Filter {
            fingerprint: Some(group),
            ..Filter::default()
        })
    }
}

/// The dead letter `id` of `dlq`, read and handed back.
async fn read_one(target: &Target, dlq: &DeadLetterQueue, id: &str) -> anyhow::Result<DeadLetter> {
    let filter = Filter::message_id(id);
    edit::read_once(target, dlq, &filter).await?.ok_or_else(|| {
        Exit::nothing_matched(format!(
            "no dead letter with message id '{id}' in '{}'",
            dlq.name
        ))
        .into()
    })
}

async fn confirm(State(ui): Shared, Query(request): Query<Request>) -> Response {
    off_thread(move || confirm_page(ui, request)).await
}

async fn confirm_page(ui: Arc<Ui>, request: Request) -> Response {
    let content = async {
        let token = ui.token.as_str();
        match request.action {
            Action::Replay | Action::Delete => {
                let (dlq, id) = request.one()?;
                let letter = read_one(&ui.target, &dlq, id).await?;
                let question = if request.action == Action::Replay {
                    format!("Replay dead letter {id} to queue '{}'?", dlq.source)
                } else {
                    format!("Delete dead letter {id} from '{}' for good?", dlq.name)
                };
                let fields = [
                    ("action", request.action.as_str()),
                    ("queue", dlq.name.as_str()),
                    ("id", id),
                ];
                Ok(pages::confirm(
                    &question,
                    &pages::summary(&letter),
                    &fields,
                    token,
                ))
            }
            Action::ReplayGroup => {
                let filter = request.group()?;
                let touched = replay::everywhere(&ui.target, None, &filter, None, true).await?;
                let total: usize = touched.iter().map(|t| t.letters.len()).sum();
                if total == 0 {
                    return Err(Exit::nothing_matched("no dead letter in this group").into());
                }
                let group = filter.fingerprint.as_deref().unwrap_or_default();
                let detail = html! {
                    ul { @for done in touched.iter().filter(|t| !t.letters.is_empty()) {
                        li { (done.letters.len()) " from " code { (done.queue) } }
                    } }
                    p { "Each copy is confirmed by the broker before its dead letter is removed." }
                };
                let question = format!("Replay the {total} dead letters of group {group}?");
                let fields = [("action", "replay-group"), ("group", group)];
                Ok(pages::confirm(&question, &detail, &fields, token))
            }
            Action::Edit => Err(Exit::usage("an edit is confirmed from its edit page").into()),
        }
    };
    page(&ui, "Confirm", None, content.await)
}

#[derive(Debug, Deserialize)]
struct EditQuery {
    queue: String,
    id: String,
}

async fn edit_form(State(ui): Shared, Query(query): Query<EditQuery>) -> Response {
    off_thread(move || edit_page(ui, query)).await
}

async fn edit_page(ui: Arc<Ui>, query: EditQuery) -> Response {
    let content = async {
        let dlq = DeadLetterQueue::parse(&query.queue)?;
        let letter = read_one(&ui.target, &dlq, &query.id).await?;
        let body = pages::pretty_body(&letter.body);
        Ok(pages::edit(&letter, &body, None, ui.token.as_str()))
    };
    page(&ui, "Edit and retry", None, content.await)
}

/// The posted edit, validated: a confirmation, or the form again saying what is wrong.
async fn review_edit(
    State(ui): Shared,
    headers: HeaderMap,
    Form(request): Form<Request>,
) -> Response {
    if let Err(why) = ui.token.check(&headers, &request.csrf) {
        return failure(&ui, StatusCode::FORBIDDEN, why);
    }
    off_thread(move || review_page(ui, request)).await
}

async fn review_page(ui: Arc<Ui>, request: Request) -> Response {
    let content = async {
        let (dlq, id) = request.one()?;
        let body = request.body.as_deref().unwrap_or_default();
        let letter = read_one(&ui.target, &dlq, id).await?;
        if let Err(why) = contracts::check_body(letter.kind.as_deref(), body.as_bytes()) {
            let problem = format!("the edited body is {why}; nothing published");
            return Ok((
                StatusCode::UNPROCESSABLE_ENTITY,
                pages::edit(&letter, body, Some(&problem), ui.token.as_str()),
            ));
        }
        let question = format!(
            "Replay dead letter {id} to queue '{}' with this body?",
            dlq.source
        );
        let detail = html! { pre { (body) } };
        let fields = [
            ("action", "edit"),
            ("queue", dlq.name.as_str()),
            ("id", id),
            ("body", body),
        ];
        Ok((
            StatusCode::OK,
            pages::confirm(&question, &detail, &fields, ui.token.as_str()),
        ))
    };
    match content.await {
        Ok((status, content)) => {
            (status, page(&ui, "Edit and retry", None, Ok(content))).into_response()
        }
        Err(err) => page(&ui, "Edit and retry", None, Err(err)),
    }
}

/// Does the confirmed action, then sends the browser to the front page saying what was done.
async fn act(State(ui): Shared, headers: HeaderMap, Form(request): Form<Request>) -> Response {
    if let Err(why) = ui.token.check(&headers, &request.csrf) {
        return failure(&ui, StatusCode::FORBIDDEN, why);
    }
    off_thread(move || act_page(ui, request)).await
}

async fn act_page(ui: Arc<Ui>, request: Request) -> Response {
    match done(&ui.target, &request).await {
        Ok(notice) => {
            tracing::info!(action = request.action.as_str(), %notice, "dead-letter page");
            Redirect::to(&link("/", "notice", &notice)).into_response()
        }
        Err(err) => failure(&ui, status_of(&err), &error_line(&err)),
    }
}

/// Runs `request`; what it did, as a sentence.
async fn done(target: &Target, request: &Request) -> anyhow::Result<String> {
    match request.action {
        Action::Replay => {
            let (dlq, id) = request.one()?;
            let filter = Filter::message_id(id);
            replay::replay(target, &dlq, &filter, Some(1), false).await?;
            Ok(format!("replayed dead letter {id} to '{}'", dlq.source))
        }
        Action::ReplayGroup => {
            let filter = request.group()?;
            let touched = replay::everywhere(target, None, &filter, None, false).await?;
            let total: usize = touched.iter().map(|t| t.letters.len()).sum();
            if total == 0 {
                return Err(Exit::nothing_matched(
                    "no dead letter in this group; nothing replayed",
                )
                .into());
            }
            let group = filter.fingerprint.unwrap_or_default();
            Ok(format!("replayed {total} dead letters of group {group}"))
        }
        Action::Delete => {
            let (dlq, id) = request.one()?;
            let filter = Filter::message_id(id);
            remove::remove(target, &dlq, &filter, Some(1), false).await?;
            Ok(format!("deleted dead letter {id} from '{}'", dlq.name))
        }
        Action::Edit => {
            let (dlq, id) = request.one()?;
            let body = request.body.clone().unwrap_or_default().into_bytes();
            let edited = edit::edit(target, &dlq, id, &NewBody::Given(body)).await?;
            Ok(format!(
                "replayed dead letter {id} to '{}' with the edited body",
                edited.target_queue
            ))
        }
    }
}
