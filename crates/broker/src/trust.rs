//! Who may have published what a consumer takes. Publishers stamp the AMQP `user_id` with their
//! login, and RabbitMQ refuses a `user_id` that is not the publishing connection's user, so the
//! property names the real publisher. A retry or dead-letter copy is republished by the
//! consumer's own user and a replay by an operator: those keep the first publisher in the
//! `original-user-id` header, which counts only on a copy by the consumer itself or an operator.

/// The users a consumer accepts a message from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trust {
    /// The one user that publishes this queue's event.
    pub publisher: String,
    /// The consumer's own user (its retry copies come back from it).
    pub own: String,
    /// Users whose replays of dead letters are accepted (operators running the CLI).
    pub operators: Vec<String>,
}

impl Trust {
    /// Whether a message with `user_id` and an `original-user-id` header `original` comes from
    /// the publisher; why not if not.
    ///
    /// # Errors
    /// The reason, naming who published it and who may.
    pub fn check(&self, user_id: Option<&str>, original: Option<&str>) -> Result<(), String> {
        if user_id == Some(self.publisher.as_str()) {
            return Ok(());
        }
        let copier = user_id.filter(|user| {
            *user == self.own || self.operators.iter().any(|operator| operator == user)
        });
        if copier.is_some() && original == Some(self.publisher.as_str()) {
            return Ok(());
        }
        Err(format!(
            "published by {} (first by {}), not by {}: only {} publishes this event",
            user_id.map_or_else(|| "no user_id".to_owned(), |u| format!("user {u:?}")),
            original.map_or_else(|| "nobody named".to_owned(), |u| format!("{u:?}")),
            self.publisher,
            self.publisher
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trust() -> Trust {
        Trust {
            publisher: "payment".into(),
            own: "order".into(),
            operators: vec!["admin".into()],
        }
    }

    #[test]
    fn the_publisher_and_copies_of_its_messages_are_trusted_and_nothing_else() {
        let t = trust();
        assert!(t.check(Some("payment"), None).is_ok(), "the publisher");
        assert!(
            t.check(Some("order"), Some("payment")).is_ok(),
            "own retry copy"
        );
        assert!(
            t.check(Some("admin"), Some("payment")).is_ok(),
            "an operator's replay"
        );

        let forged = t.check(Some("stock"), None).unwrap_err();
        assert!(
            forged.contains("\"stock\"") && forged.contains("payment"),
            "{forged}"
        );
        // The header counts only on a copy by the consumer or an operator.
        assert!(t.check(Some("stock"), Some("payment")).is_err());
        assert!(
            t.check(Some("order"), None).is_err(),
            "own copy of nobody's message"
        );
        assert!(t.check(Some("admin"), Some("stock")).is_err());
        assert!(t.check(None, Some("payment")).is_err(), "no user_id");
    }
}
