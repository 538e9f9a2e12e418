//! The workbench's words in Chinese and English, and money and dates as finance reads them.

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use rust_decimal::{Decimal, RoundingStrategy};

/// The page's language: from `?lang=`, then the `reconlight_lang` cookie, then the
/// browser's Accept-Language; Chinese when nothing says otherwise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    Zh,
    En,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::Zh => "zh",
            Lang::En => "en",
        }
    }

    /// The `lang` attribute of the page.
    pub fn html(self) -> &'static str {
        match self {
            Lang::Zh => "zh-CN",
            Lang::En => "en",
        }
    }

    pub fn parse(code: &str) -> Option<Lang> {
        let code = code.trim().to_ascii_lowercase();
        if code.starts_with("zh") {
            Some(Lang::Zh)
        } else if code.starts_with("en") {
            Some(Lang::En)
        } else {
            None
        }
    }

    /// The first of the browser's languages this page speaks, by quality.
    pub fn from_accept_language(header: &str) -> Option<Lang> {
        let mut tags: Vec<(f32, Lang)> = header
            .split(',')
            .filter_map(|part| {
                let mut it = part.split(';');
                let lang = Lang::parse(it.next()?)?;
                let q = it
                    .find_map(|p| p.trim().strip_prefix("q="))
                    .and_then(|q| q.parse::<f32>().ok())
                    .unwrap_or(1.0);
                Some((q, lang))
            })
            .collect();
        tags.sort_by(|a, b| b.0.total_cmp(&a.0));
        tags.first().map(|t| t.1)
    }

    /// The page's text for `key` (the English text is the key's meaning).
    pub fn t(self, key: &str) -> &'static str {
        match WORDS.iter().find(|w| w.0 == key) {
            Some((_, en, zh)) => match self {
                Lang::En => en,
                Lang::Zh => zh,
            },
            None => {
                debug_assert!(false, "no text for `{key}`");
                "?"
            }
        }
    }

    /// Money as finance writes it: the currency's symbol or code, thousands grouped, the
    /// currency's decimals (rounded half away from zero only for display).
    pub fn money(self, amount: Decimal, currency: &str) -> String {
        let decimals = match currency {
            "JPY" | "KRW" | "VND" => 0,
            _ => 2,
        };
        let rounded =
            amount.round_dp_with_strategy(decimals, RoundingStrategy::MidpointAwayFromZero);
        let text = format!("{:.*}", decimals as usize, rounded.abs());
        let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
        let mut grouped = String::new();
        for (i, c) in int.chars().enumerate() {
            if i > 0 && (int.len() - i) % 3 == 0 {
                grouped.push(',');
            }
            grouped.push(c);
        }
        if !frac.is_empty() {
            grouped.push('.');
            grouped.push_str(frac);
        }
        let sign = if rounded.is_sign_negative() && !rounded.is_zero() {
            "-"
        } else {
            ""
        };
        match currency {
            "CNY" | "RMB" => format!("{sign}¥{grouped}"),
            "USD" => format!("{sign}US${grouped}"),
            "EUR" => format!("{sign}€{grouped}"),
            "HKD" => format!("{sign}HK${grouped}"),
            "" => format!("{sign}{grouped}"),
            other => format!("{sign}{other} {grouped}"),
        }
    }

    /// A moment in the business time zone.
    pub fn time(self, at: DateTime<Utc>, tz: Tz) -> String {
        at.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string()
    }

    pub fn date(self, d: NaiveDate) -> String {
        d.format("%Y-%m-%d").to_string()
    }

    /// A duration in days and hours, e.g. "3 d 4 h" / "3天4小时".
    pub fn duration(self, d: chrono::Duration) -> String {
        let hours = d.num_hours().max(0);
        let (days, hours) = (hours / 24, hours % 24);
        match (self, days) {
            (Lang::En, 0) => format!("{hours} h"),
            (Lang::En, _) => format!("{days} d {hours} h"),
            (Lang::Zh, 0) => format!("{hours}小时"),
            (Lang::Zh, _) => format!("{days}天{hours}小时"),
        }
    }
}

/// (key, English, 中文).
const WORDS: &[(&str, &str, &str)] = &[
    ("app", "reconlight workbench", "reconlight 对账工作台"),
    ("nav.queue", "Queue", "待办队列"),
    ("nav.lights", "Lights", "信号灯"),
    ("nav.reports", "Monthly reports", "月度报告"),
    ("nav.main", "Main", "主导航"),
    ("signed_in_as", "Signed in as", "当前用户"),
    ("sign_out", "Sign out", "退出"),
    ("sign_in", "Sign in", "登录"),
    (
        "sign_in.token",
        "API token or OIDC token",
        "API 令牌或 OIDC 令牌",
    ),
    (
        "sign_in.help",
        "Ask an administrator for a token (reconlight tokens create).",
        "请向管理员申请令牌（reconlight tokens create）。",
    ),
    ("sign_in.refused", "The token was refused", "令牌无效"),
    ("language", "Language", "语言"),
    (
        "live",
        "Live: updates when the pipeline commits",
        "实时：流水线提交后自动刷新",
    ),
    ("updated", "Updated", "已更新"),
    // The queue.
    ("queue.title", "Discrepancy queue", "差异待办队列"),
    ("queue.filters", "Filters", "筛选条件"),
    ("queue.search", "Search", "搜索"),
    (
        "queue.search.help",
        "contract, customer, payer, remittance",
        "合同号、客户、付款人、附言",
    ),
    ("queue.kind", "Kind", "类型"),
    ("queue.state", "State", "状态"),
    ("queue.assignee", "Assignee", "处理人"),
    ("queue.customer", "Customer", "客户"),
    ("queue.owner", "Owner", "负责人"),
    ("queue.region", "Region", "区域"),
    ("queue.min_amount", "At stake from", "涉及金额自"),
    ("queue.max_amount", "At stake to", "涉及金额至"),
    ("queue.min_age", "Age at least (days)", "账龄至少（天）"),
    ("queue.sla", "SLA", "时限"),
    ("queue.sort", "Sort by", "排序"),
    ("queue.apply", "Apply", "筛选"),
    ("queue.reset", "Reset", "重置"),
    ("queue.any", "Any", "全部"),
    ("queue.active", "Open or assigned", "待处理或已分配"),
    ("queue.export_csv", "Export CSV", "导出 CSV"),
    ("queue.export_xlsx", "Export Excel", "导出 Excel"),
    ("queue.items", "items", "项"),
    ("queue.at_stake_total", "at stake", "涉及金额"),
    (
        "queue.none",
        "Nothing matches these filters.",
        "没有符合条件的事项。",
    ),
    ("queue.select", "Select", "选择"),
    (
        "queue.select_page",
        "Select every item on this page",
        "全选本页",
    ),
    ("queue.bulk", "With the selected items", "批量操作所选事项"),
    ("queue.bulk.assignee", "Assign to", "分配给"),
    ("queue.bulk.assign", "Assign", "分配"),
    ("queue.bulk.reason", "Reason to dismiss", "驳回原因"),
    ("queue.bulk.dismiss", "Dismiss", "驳回"),
    ("queue.bulk.none", "Select items first.", "请先选择事项。"),
    ("queue.prev", "Previous page", "上一页"),
    ("queue.next", "Next page", "下一页"),
    ("queue.page", "Page", "第"),
    ("queue.pages", "Pages", "分页"),
    ("col.item", "Item", "编号"),
    ("col.kind", "Kind", "类型"),
    ("col.subject", "Contract / credit", "合同 / 收款"),
    ("col.customer", "Customer", "客户"),
    ("col.at_stake", "At stake", "涉及金额"),
    ("col.sla_due", "SLA due", "时限"),
    ("col.age", "Age", "账龄"),
    ("col.assignee", "Assignee", "处理人"),
    ("col.state", "State", "状态"),
    ("col.summary", "What", "说明"),
    ("days", "days", "天"),
    ("sort.money", "Money at stake", "涉及金额"),
    ("sort.sla", "SLA due", "时限"),
    ("sort.age", "Age", "账龄"),
    ("sla.overdue", "Overdue", "已逾期"),
    ("sla.due_soon", "Due soon", "即将到期"),
    ("sla.on_time", "On time", "未到期"),
    ("state.open", "Open", "待处理"),
    ("state.assigned", "Assigned", "已分配"),
    ("state.resolved", "Resolved", "已解决"),
    ("state.dismissed", "Dismissed", "已驳回"),
    ("kind.missing_payment", "Missing payment", "未回款"),
    ("kind.partial_payment", "Partial payment", "部分回款"),
    ("kind.overpayment", "Overpayment", "多付"),
    ("kind.duplicate_payment", "Duplicate payment", "重复付款"),
    ("kind.unmatched_receipt", "Unmatched receipt", "未匹配收款"),
    ("kind.amount_mismatch", "Amount mismatch", "金额不一致"),
    (
        "kind.signature_not_certified",
        "Signature not CA-certified",
        "签署未经 CA 认证",
    ),
    (
        "kind.terms_unparseable",
        "Payment terms unreadable",
        "付款条款无法解析",
    ),
    ("kind.suggested_match", "Suggested match", "建议匹配"),
    // A work item.
    ("item.title", "Work item", "待办事项"),
    ("item.expected", "Expected", "应收"),
    ("item.received", "Received", "实收"),
    ("item.difference", "Difference", "差额"),
    ("item.first_found", "First found", "首次发现"),
    ("item.version", "Version", "版本"),
    ("item.contract", "Contract", "合同"),
    ("item.credits", "Credits applied", "已匹配收款"),
    ("item.suggestions", "Suggested allocations", "建议的匹配"),
    ("item.candidates", "Candidate credits", "候选收款"),
    (
        "item.no_candidates",
        "No open credit fits.",
        "没有合适的未匹配收款。",
    ),
    ("item.credit", "Credit", "收款"),
    ("item.booked", "Booked", "记账日"),
    ("item.payer", "Payer", "付款人"),
    ("item.remittance", "Remittance", "附言"),
    ("item.amount", "Amount", "金额"),
    ("item.rule", "Evidence", "依据"),
    ("item.confidence", "Confidence", "置信度"),
    ("item.why", "Why", "原因"),
    ("item.match", "Match to this installment", "匹配到此分期"),
    ("item.confirm", "Confirm the suggestion", "确认建议"),
    ("item.reject", "Reject the suggestion", "拒绝建议"),
    ("item.installment", "Installment", "分期"),
    ("item.actions", "Act on this item", "处理此事项"),
    ("item.comment", "Comment", "评论"),
    ("item.comment.add", "Add the comment", "添加评论"),
    ("item.assign", "Assign", "分配"),
    ("item.assignee", "Assignee", "处理人"),
    ("item.reason", "Reason", "原因"),
    ("item.resolve", "Resolve", "解决"),
    ("item.dismiss", "Dismiss", "驳回"),
    ("item.history", "History", "处理记录"),
    ("item.when", "When", "时间"),
    ("item.who", "Who", "操作人"),
    ("item.what", "What", "操作"),
    ("item.note", "Note", "备注"),
    ("item.details", "The evidence as stored", "原始证据"),
    ("item.done", "Saved.", "已保存。"),
    (
        "item.conflict",
        "Another clerk acted on this item first. Reload to see what they did, then decide again.",
        "另一位同事已先处理了此事项。请刷新查看其操作后再决定。",
    ),
    ("item.failed", "Not saved", "未保存"),
    ("item.reload", "Reload", "刷新"),
    (
        "why.customer_and_amount",
        "paid by this customer, for the amount missing",
        "该客户的付款，金额与欠款相同",
    ),
    (
        "why.customer",
        "paid by this customer, matched to nothing",
        "该客户的付款，尚未匹配到任何分期",
    ),
    (
        "why.amount",
        "the amount missing, from a payer not known as this customer",
        "金额与欠款相同，但付款人不是已知的该客户",
    ),
    // A contract.
    ("contract.title", "Contract", "合同"),
    ("status.draft", "Draft", "草稿"),
    (
        "status.pending_signature",
        "Waiting for signature",
        "待签署",
    ),
    ("status.signed", "Signed", "已签署"),
    ("status.cancelled", "Cancelled", "已取消"),
    (
        "contract.tracks",
        "Business and finance, side by side",
        "业务与财务双轨状态",
    ),
    ("contract.crm_status", "CRM status", "CRM 状态"),
    ("contract.accepted", "Customer confirmation", "客户确认"),
    (
        "contract.signature",
        "CA-certified signature",
        "CA 认证签署",
    ),
    ("contract.bank", "Bank matching", "银行到账匹配"),
    ("contract.yes", "Yes", "是"),
    ("contract.no", "No", "否"),
    ("contract.none", "None yet", "尚无"),
    ("contract.amount", "Contract amount", "合同金额"),
    ("contract.owner", "Owner", "负责人"),
    ("contract.signed_at", "Signed", "签订时间"),
    ("contract.method", "Signature method", "签署方式"),
    ("contract.installments", "Installments", "分期收款"),
    ("contract.due", "Due", "到期日"),
    ("contract.paid_by", "Paid by", "对应收款"),
    ("contract.credits", "Credits", "到账记录"),
    ("contract.signatures", "E-signature events", "电子签署事件"),
    ("contract.handoffs", "Handoffs", "交接进度"),
    ("contract.department", "Department", "部门"),
    ("contract.handoff.done", "Done", "已完成"),
    ("contract.handoff.in_progress", "In progress", "进行中"),
    ("contract.handoff.overdue", "Overdue", "已逾期"),
    ("contract.audit", "Audit trail", "审计记录"),
    ("contract.audit.field", "Field", "字段"),
    ("contract.audit.before", "Before", "修改前"),
    ("contract.audit.after", "After", "修改后"),
    ("contract.audit.ip", "From IP", "来源 IP"),
    (
        "contract.terms_error",
        "Payment terms cannot be read",
        "付款条款无法解析",
    ),
    ("contract.work_items", "Open work items", "未结事项"),
    (
        "contract.unknown",
        "The CRM never sent this contract.",
        "CRM 中没有此合同。",
    ),
    // The lights.
    ("lights.title", "Lights", "信号灯"),
    ("lights.summary", "Summary", "概览"),
    (
        "lights.difference_rate",
        "CRM vs bank difference rate",
        "业务与银行差异率",
    ),
    ("lights.auto_match", "Auto-match rate", "自动匹配率"),
    ("lights.open_items", "Open items", "未结事项"),
    (
        "lights.by_kind",
        "Open items and money at stake by kind",
        "按类型统计的未结事项与涉及金额",
    ),
    (
        "lights.trend",
        "Difference rate, last 30 nightly runs",
        "差异率（最近 30 次夜间对账）",
    ),
    ("lights.no_nightly", "No nightly run yet.", "尚无夜间对账。"),
    ("lights.firing", "Firing alerts", "触发中的告警"),
    ("lights.none", "No alert is firing.", "没有触发中的告警。"),
    ("lights.level", "Level", "级别"),
    ("lights.rule", "Rule", "规则"),
    ("lights.subject", "Subject", "对象"),
    ("lights.tier", "Escalation tier", "升级层级"),
    ("lights.firing_for", "Firing for", "已触发"),
    ("lights.ack", "Acknowledge", "确认告警"),
    ("lights.acked", "Acknowledged by", "已确认："),
    ("lights.count", "Count", "数量"),
    ("level.red", "Red", "红灯"),
    ("level.yellow", "Yellow", "黄灯"),
    ("error.not_found", "Not found", "未找到"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_is_grouped_per_currency() {
        let l = Lang::En;
        assert_eq!(l.money(Decimal::new(123456789, 2), "CNY"), "¥1,234,567.89");
        assert_eq!(l.money(Decimal::new(-5, 1), "USD"), "-US$0.50");
        assert_eq!(l.money(Decimal::new(1000, 0), "JPY"), "JPY 1,000");
        assert_eq!(l.money(Decimal::new(999, 0), "EUR"), "€999.00");
    }

    #[test]
    fn the_browser_language_with_the_highest_quality_wins() {
        assert_eq!(
            Lang::from_accept_language("fr;q=0.9, en-GB;q=0.8, zh-CN;q=0.5"),
            Some(Lang::En)
        );
        assert_eq!(
            Lang::from_accept_language("zh-CN,zh;q=0.9,en;q=0.8"),
            Some(Lang::Zh)
        );
        assert_eq!(Lang::from_accept_language("de"), None);
    }

    #[test]
    fn every_text_is_in_both_languages_once() {
        let mut keys = std::collections::HashSet::new();
        for (k, en, zh) in WORDS {
            assert!(keys.insert(k), "{k} twice");
            assert!(!en.is_empty() && !zh.is_empty(), "{k}");
        }
    }
}
