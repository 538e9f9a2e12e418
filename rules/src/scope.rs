//! Which rows a rule's answer for one subject depends on, read from its SQL's logical plan,
//! so that a batch evaluates a rule only for the subjects whose rows it changed.
//!
//! A rule is *partitioned* by a key column (a contract number, a bank reference) when its
//! answer for one key value reads only rows carrying that value: every table it scans has
//! the column (or is a dimension joined in by its own key, like a contract's customer),
//! every join, aggregate and window keeps rows of one value together, nothing picks among
//! subjects (`LIMIT`), and its rows carry the key (so that each alert is known to belong
//! to one key value). Anything else (a company-wide rate,
//! a comparison across customers) is evaluated over everything, on an interval.

use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::logical_expr::utils::split_conjunction;
use datafusion::logical_expr::{BinaryExpr, Distinct, Expr, LogicalPlan, Operator};

/// A key column and the tables whose rows each belong to one of its values.
pub struct Partitioning<'a> {
    pub key: &'a str,
    pub tables: &'a [&'a str],
    /// Tables joined in by their own key (table, column), restricted to the rows the keyed
    /// tables point at: a contract's customer.
    pub dimensions: &'a [(&'a str, &'a str)],
}

/// How a rule is evaluated when a batch changed some subjects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// For the changed values of this key only.
    Partitioned { key: String },
    /// Over everything, at most once per interval, because of `why`.
    Whole { why: String },
}

/// What the plan says about a rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Analysis {
    pub scope: Scope,
    /// It reads the clock (`now()`, `today()`): its answer can change with no new data.
    pub reads_clock: bool,
}

impl Analysis {
    /// One line for `rules check`.
    pub fn describe(&self) -> String {
        let clock = if self.reads_clock {
            "; reads the clock, so also evaluated in full on the clock interval"
        } else {
            ""
        };
        match &self.scope {
            Scope::Partitioned { key } => format!("evaluated per changed `{key}`{clock}"),
            Scope::Whole { why } => format!("evaluated in full on the interval: {why}"),
        }
    }
}

const CLOCK_FUNCTIONS: [&str; 5] = [
    "now",
    "today",
    "current_date",
    "current_time",
    "current_timestamp",
];

/// Analyses a rule's plans (its query and its `resolve_sql`, if any) against the
/// partitionings on offer, in order.
pub fn analyse(plans: &[&LogicalPlan], on_offer: &[Partitioning]) -> Analysis {
    let reads_clock = plans.iter().any(|p| reads_clock(p));
    let mut reasons = Vec::new();
    for p in on_offer {
        if !plans
            .iter()
            .all(|plan| plan.schema().fields().iter().any(|f| f.name() == p.key))
        {
            reasons.push(format!("its rows carry no `{}`", p.key));
            continue;
        }
        match plans.iter().find_map(|plan| problem(plan, p)) {
            None => {
                return Analysis {
                    scope: Scope::Partitioned {
                        key: p.key.to_string(),
                    },
                    reads_clock,
                };
            }
            Some(why) => reasons.push(why),
        }
    }
    Analysis {
        scope: Scope::Whole {
            why: if reasons.is_empty() {
                "no partitioning applies".into()
            } else {
                reasons.join("; ")
            },
        },
        reads_clock,
    }
}

fn reads_clock(plan: &LogicalPlan) -> bool {
    let mut found = false;
    let _ = plan.apply_with_subqueries(|node| {
        node.apply_expressions(|e| {
            e.apply(|e| {
                if let Expr::ScalarFunction(f) = e
                    && CLOCK_FUNCTIONS.contains(&f.name())
                {
                    found = true;
                    return Ok(TreeNodeRecursion::Stop);
                }
                Ok(TreeNodeRecursion::Continue)
            })
        })?;
        Ok(if found {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    });
    found
}

/// Why the plan cannot be evaluated per value of the key, if it cannot.
fn problem(plan: &LogicalPlan, p: &Partitioning) -> Option<String> {
    let mut found: Vec<String> = Vec::new();
    let _ = plan.apply_with_subqueries(|node| {
        if let Some(why) = node_problem(node, p)
            && !found.contains(&why)
        {
            found.push(why);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    if !tables_under(plan)
        .iter()
        .any(|t| p.tables.contains(&t.as_str()))
    {
        found.push(format!("it reads no table whose rows carry `{}`", p.key));
    }
    (!found.is_empty()).then(|| found.join(", "))
}

fn unalias(e: &Expr) -> &Expr {
    match e {
        Expr::Alias(a) => unalias(&a.expr),
        other => other,
    }
}

fn is_column(e: &Expr, name: &str) -> bool {
    matches!(unalias(e), Expr::Column(c) if c.name == name)
}

fn node_problem(node: &LogicalPlan, p: &Partitioning) -> Option<String> {
    let key = p.key;
    match node {
        LogicalPlan::TableScan(scan) => {
            let table = scan.table_name.table();
            (!p.tables.contains(&table) && !p.dimensions.iter().any(|(d, _)| *d == table))
                .then(|| format!("it reads `{table}`, whose rows carry no `{key}`"))
        }
        LogicalPlan::Aggregate(a) => (!a.group_expr.iter().any(|e| is_column(e, key)))
            .then(|| format!("it aggregates without grouping by `{key}`")),
        LogicalPlan::Window(w) => w
            .window_expr
            .iter()
            .any(|e| match unalias(e) {
                Expr::WindowFunction(f) => !f.params.partition_by.iter().any(|e| is_column(e, key)),
                _ => false,
            })
            .then(|| format!("a window function is not partitioned by `{key}`")),
        LogicalPlan::Join(j) => {
            let mut pairs: Vec<(&Expr, &Expr)> = j.on.iter().map(|(l, r)| (l, r)).collect();
            if let Some(filter) = &j.filter {
                for c in split_conjunction(filter) {
                    if let Expr::BinaryExpr(BinaryExpr {
                        left,
                        op: Operator::Eq,
                        right,
                    }) = c
                    {
                        pairs.push((left, right));
                    }
                }
            }
            let on = |name: &str| {
                pairs
                    .iter()
                    .any(|(l, r)| is_column(l, name) && is_column(r, name))
            };
            let dimension_side = |side: &LogicalPlan, column: &str| {
                let tables = tables_under(side);
                !tables.is_empty()
                    && tables
                        .iter()
                        .all(|t| p.dimensions.iter().any(|(d, c)| d == t && *c == column))
            };
            let joins_dimension = p.dimensions.iter().any(|(_, column)| {
                on(column) && (dimension_side(&j.left, column) || dimension_side(&j.right, column))
            });
            (!on(key) && !joins_dimension)
                .then(|| format!("it joins rows without equating their `{key}`"))
        }
        LogicalPlan::Projection(proj) => proj
            .expr
            .iter()
            .any(|e| e.schema_name().to_string() == key && !is_column(e, key))
            .then(|| format!("its `{key}` column is computed, not read")),
        LogicalPlan::Limit(_) => Some("LIMIT picks among subjects".into()),
        LogicalPlan::Sort(s) if s.fetch.is_some() => {
            Some("ORDER BY with a limit picks among subjects".into())
        }
        LogicalPlan::Distinct(Distinct::All(input)) => {
            (input.schema().fields().iter().all(|f| f.name() != key))
                .then(|| format!("DISTINCT over rows without `{key}`"))
        }
        LogicalPlan::Distinct(Distinct::On(d)) => (!d.on_expr.iter().any(|e| is_column(e, key)))
            .then(|| format!("DISTINCT ON without `{key}`")),
        LogicalPlan::RecursiveQuery(_) | LogicalPlan::Extension(_) => {
            Some("it uses a recursive query or an extension".into())
        }
        _ => None,
    }
}

/// The tables a plan scans.
fn tables_under(plan: &LogicalPlan) -> Vec<String> {
    let mut out = Vec::new();
    let _ = plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node {
            out.push(scan.table_name.table().to_string());
        }
        Ok(TreeNodeRecursion::Continue)
    });
    out
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::datatypes::{DataType, Field, Schema};

    use super::*;
    use crate::{Engine, Rule};

    const ON_OFFER: [Partitioning<'static>; 1] = [Partitioning {
        key: "contract_no",
        tables: &["contracts", "installments"],
        dimensions: &[("customers", "customer_id")],
    }];

    async fn analysed(sql: &str) -> Analysis {
        let engine = Engine::new(chrono_tz::UTC);
        let text = |names: &[&str]| {
            Arc::new(Schema::new(
                names
                    .iter()
                    .map(|n| Field::new(*n, DataType::Utf8, true))
                    .collect::<Vec<_>>(),
            ))
        };
        let tables = [
            ("contracts", &["contract_no", "customer_id", "status"][..]),
            ("installments", &["contract_no", "seq", "customer_id"][..]),
            ("customers", &["customer_id", "name"][..]),
            ("leads", &["lead_id", "owner"][..]),
        ];
        for (name, columns) in tables {
            engine.set_empty_table(name, text(columns)).unwrap();
        }
        let rule = Rule::parse(
            "test.toml",
            &format!(
                "id = \"t\"\ntitle = \"t\"\nsubject = [\"contract_no\"]\nsql = \"\"\"\n{sql}\n\"\"\"\n"
            ),
        )
        .unwrap();
        engine.analyse(&rule, &ON_OFFER).await.unwrap()
    }

    fn why(a: &Analysis) -> &str {
        match &a.scope {
            Scope::Whole { why } => why,
            Scope::Partitioned { key } => panic!("partitioned by {key}"),
        }
    }

    #[tokio::test]
    async fn a_rule_over_one_contracts_rows_is_partitioned_by_contract() {
        let a = analysed(
            "SELECT c.contract_no, 'red' AS level, ROW_NUMBER() OVER (PARTITION BY i.contract_no ORDER BY i.seq) AS n
             FROM contracts c JOIN installments i ON i.contract_no = c.contract_no
             JOIN customers cu ON cu.customer_id = c.customer_id
             WHERE c.status = 'signed' AND i.seq < CAST(today() AS VARCHAR)",
        )
        .await;
        assert_eq!(
            a.scope,
            Scope::Partitioned {
                key: "contract_no".into()
            }
        );
        assert!(a.reads_clock);
        let a = analysed(
            "SELECT contract_no, 'red' AS level, COUNT(*) AS n FROM installments GROUP BY contract_no",
        )
        .await;
        assert!(matches!(a.scope, Scope::Partitioned { .. }));
        assert!(!a.reads_clock);
    }

    #[tokio::test]
    async fn rules_that_compare_across_contracts_are_evaluated_in_full() {
        let a = analysed(
            "SELECT contract_no, 'red' AS level FROM contracts WHERE customer_id IN
             (SELECT customer_id FROM contracts GROUP BY customer_id HAVING COUNT(*) > 3)",
        )
        .await;
        assert!(
            why(&a).contains("aggregates without grouping by `contract_no`"),
            "{a:?}"
        );
        let a = analysed(
            "SELECT contract_no, 'red' AS level FROM contracts ORDER BY contract_no LIMIT 5",
        )
        .await;
        assert!(why(&a).contains("picks among subjects"), "{a:?}");
        let a = analysed(
            "SELECT a.contract_no, 'red' AS level FROM contracts a JOIN contracts b ON a.customer_id = b.customer_id AND a.contract_no <> b.contract_no",
        )
        .await;
        assert!(
            why(&a).contains("joins rows without equating their `contract_no`"),
            "{a:?}"
        );
        let a = analysed("SELECT c.contract_no, 'red' AS level FROM contracts c JOIN leads l ON l.owner = c.customer_id").await;
        assert!(why(&a).contains("reads `leads`"), "{a:?}");
        let a = analysed("SELECT customer_id AS contract_no, 'red' AS level FROM customers").await;
        assert!(
            why(&a).contains("reads no table whose rows carry `contract_no`"),
            "{a:?}"
        );
        assert!(why(&a).contains("computed, not read"), "{a:?}");
    }
}
