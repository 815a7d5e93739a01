//! What one hook run decides and says, merged across the rules a binary runs.
//!
//! Decisions merge deny > ask > allow > none; reasons, contexts and system messages are
//! joined in rule order and capped at Claude Code's 10,000-character limit. Only
//! [`Outcome::into_output`] turns an outcome into the wire reply.

use crate::protocol::{Decision, Event, HookOutput, HookSpecificOutput, MAX_OUTPUT_CHARS};
use crate::redact::truncate;

/// The merged result of a hook's rules.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    /// The strongest decision any rule made.
    pub decision: Option<Decision>,
    /// Why, in rule order.
    pub reasons: Vec<String>,
    /// Context for the model, in rule order.
    pub context: Vec<String>,
    /// Messages for the user, in rule order.
    pub system_messages: Vec<String>,
}

impl Outcome {
    /// Folds `other` into `self`: the stronger decision wins, texts are appended.
    pub fn merge(&mut self, other: Outcome) {
        self.decision = self.decision.max(other.decision);
        self.reasons.extend(other.reasons);
        self.context.extend(other.context);
        self.system_messages.extend(other.system_messages);
    }

    /// Whether there is nothing to tell the client.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.decision.is_none()
            && self.reasons.is_empty()
            && self.context.is_empty()
            && self.system_messages.is_empty()
    }

    /// The reply for `event`, or `None` when there is nothing to say (stdout stays empty).
    #[must_use]
    pub fn into_output(self, event: &Event) -> Option<HookOutput> {
        if self.is_empty() {
            return None;
        }
        let joined = |parts: &[String]| {
            (!parts.is_empty()).then(|| truncate(&parts.join("\n"), MAX_OUTPUT_CHARS))
        };
        let context = joined(&self.context);
        let specific = match event {
            Event::SessionStart { .. } => context
                .map(|additional_context| HookSpecificOutput::SessionStart { additional_context }),
            Event::PreToolUse(_) => (self.decision.is_some() || context.is_some()).then(|| {
                HookSpecificOutput::PreToolUse {
                    permission_decision: self.decision,
                    permission_decision_reason: self.decision.and(joined(&self.reasons)),
                    additional_context: context,
                }
            }),
            Event::PostToolUse { .. } => context
                .map(|additional_context| HookSpecificOutput::PostToolUse { additional_context }),
            Event::PostToolUseFailure { .. } => {
                context.map(
                    |additional_context| HookSpecificOutput::PostToolUseFailure {
                        additional_context,
                    },
                )
            }
            Event::ConfigChange { .. } | Event::Other => None,
        };
        let block =
            matches!(event, Event::ConfigChange { .. }) && self.decision == Some(Decision::Deny);
        let output = HookOutput {
            decision: block.then_some("block"),
            reason: if block { joined(&self.reasons) } else { None },
            system_message: joined(&self.system_messages),
            hook_specific_output: specific,
        };
        (output != HookOutput::default()).then_some(output)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ToolCall;

    fn deny(reason: &str) -> Outcome {
        Outcome {
            decision: Some(Decision::Deny),
            reasons: vec![reason.into()],
            ..Outcome::default()
        }
    }

    fn pre() -> Event {
        Event::PreToolUse(ToolCall {
            tool_name: "Bash".into(),
            tool_input: serde_json::json!({}),
            tool_use_id: None,
        })
    }

    #[test]
    fn deny_beats_ask_beats_allow() {
        let mut o = Outcome {
            decision: Some(Decision::Allow),
            ..Outcome::default()
        };
        o.merge(Outcome {
            decision: Some(Decision::Ask),
            ..Outcome::default()
        });
        assert_eq!(o.decision, Some(Decision::Ask));
        o.merge(deny("a"));
        o.merge(Outcome {
            decision: Some(Decision::Allow),
            ..Outcome::default()
        });
        assert_eq!(o.decision, Some(Decision::Deny));
    }

    #[test]
    fn reasons_join_in_rule_order_and_are_capped() {
        let mut o = deny("first");
        o.merge(deny("second"));
        let out = o.clone().into_output(&pre()).unwrap();
        let Some(HookSpecificOutput::PreToolUse {
            permission_decision_reason: Some(r),
            ..
        }) = out.hook_specific_output
        else {
            panic!("{out:?}");
        };
        assert_eq!(r, "first\nsecond");
        let long = deny(&"x".repeat(20_000))
            .into_output(&pre())
            .unwrap()
            .to_json();
        assert!(long.len() < MAX_OUTPUT_CHARS + 200, "{}", long.len());
    }

    #[test]
    fn empty_outcome_prints_nothing() {
        assert_eq!(Outcome::default().into_output(&pre()), None);
    }
}
