// doctor/rule: Traefik's router rule grammar (v2 and v3), parsed so `linesman doctor` can say
// which matcher is wrong and at which column, instead of Traefik's silent drop of the router.
//
//   expr    := and ( "||" and )*          && binds tighter than ||
//   and     := unary ( "&&" unary )*
//   unary   := "!" unary | primary
//   primary := "(" expr ")" | NAME "(" [ string ( "," string )* ] ")"
//   string  := `raw` | "escaped"          (Go string literals, as Traefik reads them)
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace linesman::tools::doctor {

// rule_expr: one node of a parsed rule. Owns its children by value.
struct rule_expr {
  enum class op { matcher, and_op, or_op, not_op };
  op kind = op::matcher;
  std::string name;               // matcher name as written
  std::vector<std::string> args;  // matcher arguments, unquoted
  int col = 0;                    // 1-based column of the matcher name or operator
  std::vector<rule_expr> children;
};

struct rule_error {
  std::string message;
  int col = 0;  // 1-based column in the rule text
};

// rule_parse_result: exactly one of `expr` and `error` is set.
struct rule_parse_result {
  std::optional<rule_expr> expr;
  std::optional<rule_error> error;
};

// parse_rule: syntax only (any matcher name is accepted here; see check_tcp_rule). Never throws.
rule_parse_result parse_rule(std::string_view text);

// to_string: a canonical, fully parenthesised form, for tests and messages.
std::string to_string(const rule_expr& e);

enum class rule_syntax { v2, v3 };

// rule_problem: a semantic issue of a TCP rule under one syntax version.
struct rule_problem {
  enum class kind { http_matcher, unknown_matcher, bad_arguments };
  kind what = kind::unknown_matcher;
  std::string message;
  std::string fix;
  int col = 0;
};

// check_tcp_rule: matchers valid on a TCP router in `syntax`, and their argument counts.
std::vector<rule_problem> check_tcp_rule(const rule_expr& e, rule_syntax syntax);

// rule_sni_info: what a TCP rule says about SNI.
struct rule_sni_info {
  bool domain_sni = false;            // a HostSNI with a domain or any HostSNIRegexp
  bool catch_all = false;             // the rule is exactly HostSNI(`*`)
  std::vector<std::string> literals;  // lower-cased HostSNI domains (not under `!`)
};
rule_sni_info sni_info(const rule_expr& e);

}  // namespace linesman::tools::doctor
