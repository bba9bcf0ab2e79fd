use std::fmt;
use std::str::FromStr;

/// Escalation stage of a case, set by days since the oldest unpaid due date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stage {
    Reminder1,
    Reminder2,
    Reminder3,
    Warning,
    Escalated,
}

impl Stage {
    pub const ALL: [Stage; 5] = [
        Stage::Reminder1,
        Stage::Reminder2,
        Stage::Reminder3,
        Stage::Warning,
        Stage::Escalated,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Stage::Reminder1 => "reminder_1",
            Stage::Reminder2 => "reminder_2",
            Stage::Reminder3 => "reminder_3",
            Stage::Warning => "warning",
            Stage::Escalated => "escalated",
        }
    }

    /// The message the bot sends on entering this stage; escalated cases are
    /// human work (formal letters, inspection), so the bot says nothing.
    pub fn message(&self) -> Option<&'static str> {
        match self {
            Stage::Escalated => None,
            other => Some(other.as_str()),
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Stage {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Stage::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| format!("unknown stage `{s}`"))
    }
}

/// Case status as CONTRACT names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CaseStatus {
    Open,
    Promised,
    NeedsOfficer,
    Escalated,
    Resolved,
}

impl CaseStatus {
    pub const ALL: [CaseStatus; 5] = [
        CaseStatus::Open,
        CaseStatus::Promised,
        CaseStatus::NeedsOfficer,
        CaseStatus::Escalated,
        CaseStatus::Resolved,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            CaseStatus::Open => "open",
            CaseStatus::Promised => "promised",
            CaseStatus::NeedsOfficer => "needs_officer",
            CaseStatus::Escalated => "escalated",
            CaseStatus::Resolved => "resolved",
        }
    }
}

impl fmt::Display for CaseStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CaseStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CaseStatus::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| format!("unknown case status `{s}`"))
    }
}

/// Why the bot is not messaging a case right now. Officers should never have
/// to guess why the bot is silent, so every non-send carries one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuietReason {
    WindowClosed,
    NonSendingDay,
    Holiday,
    DailyCap,
    /// The portfolio's daily tier of business-initiated recipients is
    /// used up; larger and older arrears went first.
    DailyTier,
    Paused,
    Promised,
    OptedOut,
    NoWhatsApp,
    WrongNumber,
    Escalated,
    AwaitingOfficer,
    /// Meta paused, disabled or rejected the message's template.
    TemplatePaused,
}

impl QuietReason {
    pub const ALL: [QuietReason; 13] = [
        QuietReason::WindowClosed,
        QuietReason::NonSendingDay,
        QuietReason::Holiday,
        QuietReason::DailyCap,
        QuietReason::DailyTier,
        QuietReason::Paused,
        QuietReason::Promised,
        QuietReason::OptedOut,
        QuietReason::NoWhatsApp,
        QuietReason::WrongNumber,
        QuietReason::Escalated,
        QuietReason::AwaitingOfficer,
        QuietReason::TemplatePaused,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            QuietReason::WindowClosed => "window_closed",
            QuietReason::NonSendingDay => "non_sending_day",
            QuietReason::Holiday => "holiday",
            QuietReason::DailyCap => "daily_cap",
            QuietReason::DailyTier => "daily_tier",
            QuietReason::Paused => "paused",
            QuietReason::Promised => "promised",
            QuietReason::OptedOut => "opted_out",
            QuietReason::NoWhatsApp => "no_whatsapp_number",
            QuietReason::WrongNumber => "wrong_number",
            QuietReason::Escalated => "escalated",
            QuietReason::AwaitingOfficer => "awaiting_officer",
            QuietReason::TemplatePaused => "template_paused",
        }
    }

    /// One line an officer reads on the case page.
    pub fn describe(&self) -> &'static str {
        match self {
            QuietReason::WindowClosed => "outside the sending window (08:00–20:00 local time)",
            QuietReason::NonSendingDay => "not a sending day (Sunday)",
            QuietReason::Holiday => "national holiday",
            QuietReason::DailyCap => "already reminded today (one reminder a day)",
            QuietReason::DailyTier => "daily WhatsApp reach used up; larger arrears first",
            QuietReason::Paused => "paused by an officer",
            QuietReason::Promised => "promise to pay is running",
            QuietReason::OptedOut => "employer opted out of WhatsApp messages",
            QuietReason::NoWhatsApp => "no WhatsApp number on file",
            QuietReason::WrongNumber => "the number on file was reported wrong",
            QuietReason::Escalated => "escalated to an officer: no more automated reminders",
            QuietReason::AwaitingOfficer => "waiting for an officer",
            QuietReason::TemplatePaused => crate::templates_status::REASON,
        }
    }
}

impl fmt::Display for QuietReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for QuietReason {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        QuietReason::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown quiet reason `{s}`"))
    }
}
