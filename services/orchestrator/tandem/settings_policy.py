"""The nested settings groups of what Tandem decides and keeps (`tandem.settings` re-exports
them): answering outcomes, the adapter lifecycle, the widget, feedback, handoffs and release
pairs. Each field's attribute docstring is its description in the README's settings table
(`tandem.settings_table`)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator, model_validator

from tandem.settings_groups import PROJECT_ROOT, CommaList, SettingsGroup, _split_commas


class AnsweringSettings(SettingsGroup):
    """The outcome before generation (tandem/answering/outcome.py), its thresholds chosen on
    the calibration split by bench/bench_outcomes.py; and the checks after generation."""

    # TANDEM_ANSWERING__GATE=false: every question is answered (no suggested / declined)
    gate: bool = True
    """Decide answered / suggested / declined first; false: answer everything."""
    # the cross-encoder reads the question with each retrieved block: its best score is the
    # evidence (off: every question counts as having enough)
    cross_encoder: bool = True
    """Score the retrieved blocks with the cross-encoder (the evidence)."""
    cross_encoder_dir: Path | None = None
    """Cross-encoder folder; unset: `<models_dir>/reranker-minilm-l12`."""
    speculate: bool = True
    """Send the prompt to vLLM while the outcome is still being decided (cancelled when the
    turn is not answered): the decision's time overlaps vLLM's prefill."""
    cross_encoder_tokens: int = Field(default=160, ge=32, le=512)
    """Tokens of a (question, block) pair the cross-encoder reads; its cost before the first
    token grows with it."""
    # Chosen on the calibration splits (bench/bench_outcomes.py --calibrate, fewest errors,
    # a suggestion holding the right page half an error): the subject decides; the evidence
    # threshold sits at the floor of the cross-encoder's scores (~ -11), as on long customer
    # questions it cost more answerable ones than it caught unanswerable ones (the trade-off
    # curve: bench/bench_outcomes.py --curve, docs/MEASUREMENTS.md)
    min_evidence: float = -10.0
    """Best cross-encoder score below this: suggested."""
    max_unknown_subject: int = Field(default=0, ge=0)
    """Subject words the release never uses, allowed before suggesting."""
    subject_override: float = 3.0
    """Evidence at or above this answers despite unknown subject words."""
    declined_similarity: float = 0.2
    """Weak evidence and best dense similarity below this: declined."""
    declined_evidence: float = -6.0
    """Evidence below this is weak enough to decline."""
    max_suggestions: int = Field(default=3, ge=1, le=10)
    """Most pages a suggested answer lists."""
    # the words a question asks about, found with spaCy's parser (answering/subject.py)
    subject: bool = True
    """Find the words a question asks about with spaCy's parser."""
    # sentences carrying a literal no given block holds are removed from whole answers
    remove_unsupported: bool = True
    """Remove sentences with a literal no given block holds."""


class AdapterSettings(SettingsGroup):
    """The adapter lifecycle: background check, swap lease, probe, unloading retired versions."""

    check_interval_s: float = 10.0
    """How often replicas are checked for the serving adapters."""
    unload_grace_s: float = 15.0
    """A retired version stays loaded at least this long."""
    lease_ttl_s: float = 300.0
    """A swap lease held by a crashed orchestrator expires after this."""
    probe_max_tokens: int = 2
    """Tokens the probe generates (a real generation, kept short)."""


class WidgetSettings(SettingsGroup):
    """The embeddable chat widget: which browser origins may call the chat API, and its key."""

    # TANDEM_WIDGET__ORIGINS: origins (scheme://host[:port]) allowed to call /v1/chat and
    # /v1/feedback from a browser; the demo page is same-origin and needs none
    origins: CommaList = Field(default_factory=list)
    """Comma-separated origins that may call the chat API from a browser."""
    # TANDEM_WIDGET__KEY: the chat key /widget/demo puts in its page; must be a chat key
    # (never an admin key): whatever is in a page is public
    key: str | None = None
    """Chat key `/widget/demo` puts in its page (one of `TANDEM_API_KEYS`)."""

    _split = field_validator("origins", mode="before")(_split_commas)


class FeedbackSettings(SettingsGroup):
    """The answer log behind thumbs up/down: kept `retention_days`, 0 keeps nothing."""

    retention_days: int = Field(default=30, ge=0)
    """Days answers are kept for feedback; 0 keeps none, takes no feedback."""
    max_comment_chars: int = Field(default=2_000, ge=1)
    """Longest feedback comment."""


class HandoffSettings(SettingsGroup):
    """Handing a conversation to a person: the help desk's webhook and how it is retried."""

    # TANDEM_HANDOFF__WEBHOOK_URL: each handoff is POSTed here (JSON, signed); unset: handoffs
    # are kept as `pending` and listed at GET /v1/admin/handoffs until one is set
    webhook_url: str | None = None
    """Help desk webhook for handoffs; unset: they wait as `pending`."""
    secret: str | None = None
    """HMAC-SHA256 key of `X-Tandem-Signature`; required with a webhook."""
    max_attempts: int = Field(default=8, ge=1)
    """Delivery attempts, then the handoff is `failed`."""
    backoff_s: float = Field(default=5.0, gt=0)
    """Wait after the first failed attempt."""
    backoff_max_s: float = Field(default=900.0, gt=0)
    """Waits double up to this."""
    timeout_s: float = Field(default=10.0, gt=0)
    """One attempt's deadline."""
    poll_s: float = Field(default=5.0, gt=0)
    """How often due handoffs are looked for."""
    retention_days: int | None = Field(default=None, ge=0)
    """Days handoffs are kept; unset: `TANDEM_FEEDBACK__RETENTION_DAYS`."""
    max_contact_chars: int = Field(default=320, ge=1)
    """Longest contact a handoff may carry."""
    max_note_chars: int = Field(default=2_000, ge=1)
    """Longest note a handoff may carry."""
    max_transcript_chars: int = Field(default=32_000, ge=1)
    """Longest transcript: all messages' content together."""

    @model_validator(mode="after")
    def _signed(self) -> HandoffSettings:
        if self.webhook_url and not self.secret:
            raise ValueError(
                "TANDEM_HANDOFF__WEBHOOK_URL is set without TANDEM_HANDOFF__SECRET: the help "
                "desk could not tell Tandem's handoffs from anyone else's. Set a secret."
            )
        return self


class ReleaseSettings(SettingsGroup):
    """Release pairs (docs + adapter): the candidate's gate, the canary's watch, rollback."""

    keep: int = Field(default=3, ge=1)
    """Pairs kept for `tandem release rollback` besides the serving one."""
    qa_roots: CommaList = Field(default_factory=lambda: [str(PROJECT_ROOT / "eval")])
    """Comma-separated folders a release's QA file may be read from."""
    max_derived_questions: int = Field(default=20, ge=0)
    """Gate questions made from the pages a release adds or changes."""
    pointer_ttl_s: float = Field(default=1.0, ge=0)
    """How long a replica answers from the pair pointer it last read."""
    watch_interval_s: float = Field(default=10.0, gt=0)
    """How often counts are shared and a canary is compared."""
    min_answers: int = Field(default=50, ge=1)
    """Answers a canary gives before it can be rolled back automatically."""
    max_down_margin: float = Field(default=0.1, ge=0, le=1)
    """Canary rolled back when its thumbs-down share exceeds serving's by more."""
    max_error_margin: float = Field(default=0.05, ge=0, le=1)
    """Canary rolled back when its error share exceeds serving's by more."""
    stale_after_s: float = Field(default=60.0, gt=0)
    """A promote left unfinished this long by a replica is finished by another."""

    _split = field_validator("qa_roots", mode="before")(_split_commas)
