#include "tools/doctor/rule.hpp"

#include "tools/text.hpp"

#include <algorithm>
#include <array>
#include <cctype>

namespace linesman::tools::doctor {

namespace {

// parser: recursive descent over the rule text; records the first error and its column.
class parser {
 public:
  explicit parser(std::string_view text) : text_(text) {}

  rule_parse_result run() {
    rule_parse_result out;
    skip_space();
    if (pos_ >= text_.size()) {
      out.error = rule_error{"empty rule", 1};
      return out;
    }
    auto e = parse_or(0);
    if (!error_) {
      skip_space();
      if (pos_ < text_.size()) {
        fail("unexpected '" + std::string(text_.substr(pos_, 1)) +
             "' after a complete expression (missing && or ||?)");
      }
    }
    if (error_) {
      out.error = error_;
    } else {
      out.expr = std::move(e);
    }
    return out;
  }

 private:
  static constexpr int kMaxDepth = 64;  // bounded recursion on hostile input

  int col() const { return static_cast<int>(pos_) + 1; }
  void fail(std::string msg) {
    if (!error_) {
      error_ = rule_error{std::move(msg), col()};
    }
  }
  void skip_space() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_])) != 0) {
      ++pos_;
    }
  }
  bool take(std::string_view tok) {
    skip_space();
    if (text_.substr(pos_, tok.size()) == tok) {
      pos_ += tok.size();
      return true;
    }
    return false;
  }

  rule_expr parse_or(int depth) {
    skip_space();
    const int c = col();
    auto left = parse_and(depth);
    if (error_) {
      return left;
    }
    if (!peek_is("||")) {
      return left;
    }
    rule_expr node;
    node.kind = rule_expr::op::or_op;
    node.col = c;
    node.children.push_back(std::move(left));
    while (!error_ && take("||")) {
      node.children.push_back(parse_and(depth));
    }
    return node;
  }

  rule_expr parse_and(int depth) {
    skip_space();
    const int c = col();
    auto left = parse_unary(depth);
    if (error_ || !peek_is("&&")) {
      return left;
    }
    rule_expr node;
    node.kind = rule_expr::op::and_op;
    node.col = c;
    node.children.push_back(std::move(left));
    while (!error_ && take("&&")) {
      node.children.push_back(parse_unary(depth));
    }
    return node;
  }

  bool peek_is(std::string_view tok) {
    skip_space();
    return text_.substr(pos_, tok.size()) == tok;
  }

  rule_expr parse_unary(int depth) {
    if (depth > kMaxDepth) {
      fail("rule nested too deeply");
      return {};
    }
    skip_space();
    if (pos_ < text_.size() && text_[pos_] == '!' && text_.substr(pos_, 2) != "!=") {
      rule_expr node;
      node.kind = rule_expr::op::not_op;
      node.col = col();
      ++pos_;
      node.children.push_back(parse_unary(depth + 1));
      return node;
    }
    return parse_primary(depth);
  }

  rule_expr parse_primary(int depth) {
    skip_space();
    if (pos_ >= text_.size()) {
      fail("unexpected end of rule: expected a matcher such as HostSNI(`example.com`)");
      return {};
    }
    if (text_[pos_] == '(') {
      ++pos_;
      auto inner = parse_or(depth + 1);
      if (error_) {
        return inner;
      }
      if (!take(")")) {
        fail("missing ')'");
      }
      return inner;
    }
    const char ch = text_[pos_];
    if (std::isalpha(static_cast<unsigned char>(ch)) == 0) {
      if (ch == '&' || ch == '|') {
        fail("operator '" + std::string(text_.substr(pos_, 2)) + "' without a left operand");
      } else if (ch == ')') {
        fail("unexpected ')'");
      } else {
        fail("expected a matcher name, found '" + std::string(1, ch) + "'");
      }
      return {};
    }
    rule_expr m;
    m.kind = rule_expr::op::matcher;
    m.col = col();
    while (pos_ < text_.size() &&
           (std::isalnum(static_cast<unsigned char>(text_[pos_])) != 0 || text_[pos_] == '_')) {
      m.name.push_back(text_[pos_++]);
    }
    if (!take("(")) {
      fail("expected '(' after " + m.name);
      return m;
    }
    skip_space();
    if (take(")")) {
      return m;
    }
    for (;;) {
      skip_space();
      std::string arg;
      if (!parse_string(arg)) {
        return m;
      }
      m.args.push_back(std::move(arg));
      if (take(",")) {
        continue;
      }
      if (take(")")) {
        return m;
      }
      skip_space();
      if (pos_ >= text_.size()) {
        fail("missing ')' to close " + m.name + "(");
      } else {
        fail("expected ',' or ')' in " + m.name + "(");
      }
      return m;
    }
  }

  bool parse_string(std::string& out) {
    if (pos_ >= text_.size()) {
      fail("unexpected end of rule inside a matcher's arguments");
      return false;
    }
    const char q = text_[pos_];
    if (q == '\'') {
      fail("single quotes are not allowed: quote with backquotes `...` or double quotes");
      return false;
    }
    if (q != '`' && q != '"') {
      fail("expected a quoted string (`...` or \"...\")");
      return false;
    }
    const std::size_t start = pos_;
    ++pos_;
    while (pos_ < text_.size() && text_[pos_] != q) {
      if (q == '"' && text_[pos_] == '\\' && pos_ + 1 < text_.size()) {
        ++pos_;  // Go escape: the next character is literal for our purposes
      }
      out.push_back(text_[pos_++]);
    }
    if (pos_ >= text_.size()) {
      pos_ = start;
      fail(std::string("unterminated string: missing closing ") + q);
      return false;
    }
    ++pos_;
    return true;
  }

  std::string_view text_;
  std::size_t pos_ = 0;
  std::optional<rule_error> error_;
};

constexpr std::array kHttpMatchers{
    "Host",    "HostHeader",    "HostRegexp", "Path",         "PathPrefix", "PathRegexp", "Method",
    "Headers", "HeadersRegexp", "Header",     "HeaderRegexp", "Query",      "QueryRegexp"};

bool is_http_matcher(std::string_view n) {
  return std::any_of(kHttpMatchers.begin(), kHttpMatchers.end(),
                     [&](const char* m) { return n == m; });
}

void check_node(const rule_expr& e, rule_syntax syntax, std::vector<rule_problem>& out) {
  if (e.kind != rule_expr::op::matcher) {
    for (const auto& c : e.children) {
      check_node(c, syntax, out);
    }
    return;
  }
  const bool v3 = syntax == rule_syntax::v3;
  auto add = [&](rule_problem::kind k, std::string msg, std::string fix) {
    out.push_back(rule_problem{k, std::move(msg), std::move(fix), e.col});
  };
  if (is_http_matcher(e.name)) {
    std::string fix = "TCP routers match on HostSNI(`name`), HostSNIRegexp, ClientIP";
    fix += v3 ? ", ALPN" : "";
    if (e.name == "Host" || e.name == "HostHeader") {
      fix = "use HostSNI(`" + (e.args.empty() ? std::string("example.com") : e.args.front()) +
            "`) and enable tls on the router (the SNI is only visible in a TLS ClientHello)";
    }
    add(rule_problem::kind::http_matcher,
        e.name + "() is an HTTP matcher; Traefik rejects a TCP router that uses it", fix);
    return;
  }
  const bool known =
      e.name == "HostSNI" || e.name == "HostSNIRegexp" || e.name == "ClientIP" || e.name == "ALPN";
  if (!known) {
    std::string fix = "TCP matchers are HostSNI, HostSNIRegexp, ClientIP";
    fix += v3 ? ", ALPN" : "";
    for (const char* k : {"HostSNI", "HostSNIRegexp", "ClientIP", "ALPN"}) {
      if (lower(k) == lower(e.name)) {
        fix = std::string("matcher names are case-sensitive: write ") + k;
      }
    }
    add(rule_problem::kind::unknown_matcher, "unknown TCP matcher " + e.name + "()", fix);
    return;
  }
  if (e.name == "ALPN" && !v3) {
    add(rule_problem::kind::unknown_matcher, "ALPN() is a Traefik v3 matcher",
        "upgrade to Traefik v3 or drop the ALPN() condition");
    return;
  }
  if (e.args.empty()) {
    add(rule_problem::kind::bad_arguments, e.name + "() needs an argument",
        e.name == "HostSNI" ? "write HostSNI(`example.com`), or HostSNI(`*`) to match everything"
                            : "give the matcher one quoted value");
    return;
  }
  if (v3 && e.args.size() > 1) {
    std::string fix = "in v3 each matcher takes one value: ";
    for (std::size_t i = 0; i < e.args.size(); ++i) {
      fix += (i != 0 ? " || " : "") + e.name + "(`" + e.args[i] + "`)";
    }
    fix += " (or set ruleSyntax: v2 on the router)";
    add(rule_problem::kind::bad_arguments,
        e.name + "() has " + std::to_string(e.args.size()) +
            " arguments; Traefik v3 syntax accepts exactly one",
        fix);
    return;
  }
  for (const auto& a : e.args) {
    if (a.empty()) {
      add(rule_problem::kind::bad_arguments, e.name + "() has an empty argument",
          "give a value, e.g. HostSNI(`example.com`)");
      return;
    }
    if (e.name == "HostSNI" && a != "*" &&
        (a.find('*') != std::string::npos || a.find('{') != std::string::npos)) {
      add(rule_problem::kind::bad_arguments,
          "HostSNI(`" + a + "`) is not a plain host name; wildcards are not matched by HostSNI",
          "use HostSNIRegexp(`^[a-z0-9-]+\\.example\\.com$`) for patterns");
      return;
    }
    if (e.name == "HostSNIRegexp" && v3 && a.find('{') != std::string::npos &&
        a.find(':') != std::string::npos) {
      add(rule_problem::kind::bad_arguments,
          "HostSNIRegexp(`" + a +
              "`) uses the v2 {name:regexp} form, which v3 reads as a plain "
              "regular expression",
          "write a plain regular expression, e.g. HostSNIRegexp(`^.+\\.example\\.com$`), or set "
          "ruleSyntax: v2");
      return;
    }
  }
}

void collect_sni(const rule_expr& e, bool negated, rule_sni_info& out) {
  if (e.kind == rule_expr::op::matcher) {
    if (e.name == "HostSNIRegexp") {
      out.domain_sni = true;
    } else if (e.name == "HostSNI") {
      for (const auto& a : e.args) {
        if (a != "*") {
          out.domain_sni = true;
          if (!negated) {
            out.literals.push_back(lower(a));
          }
        }
      }
    }
    return;
  }
  for (const auto& c : e.children) {
    collect_sni(c, negated != (e.kind == rule_expr::op::not_op), out);
  }
}

}  // namespace

rule_parse_result parse_rule(std::string_view text) { return parser(text).run(); }

std::string to_string(const rule_expr& e) {
  switch (e.kind) {
    case rule_expr::op::matcher: {
      std::string s = e.name + "(";
      for (std::size_t i = 0; i < e.args.size(); ++i) {
        s += i != 0 ? "," : "";
        if (e.args[i].find('`') == std::string::npos) {
          s += "`" + e.args[i] + "`";
          continue;
        }
        s += '"';  // a backquote inside: only the escaped form can carry it
        for (char c : e.args[i]) {
          if (c == '"' || c == '\\') {
            s += '\\';
          }
          s += c;
        }
        s += '"';
      }
      return s + ")";
    }
    case rule_expr::op::not_op:
      return "!" + to_string(e.children.front());
    case rule_expr::op::and_op:
    case rule_expr::op::or_op: {
      std::string s = "(";
      for (std::size_t i = 0; i < e.children.size(); ++i) {
        if (i != 0) {
          s += e.kind == rule_expr::op::and_op ? " && " : " || ";
        }
        s += to_string(e.children[i]);
      }
      return s + ")";
    }
  }
  return {};
}

std::vector<rule_problem> check_tcp_rule(const rule_expr& e, rule_syntax syntax) {
  std::vector<rule_problem> out;
  check_node(e, syntax, out);
  return out;
}

rule_sni_info sni_info(const rule_expr& e) {
  rule_sni_info out;
  collect_sni(e, false, out);
  out.catch_all = e.kind == rule_expr::op::matcher && e.name == "HostSNI" && e.args.size() == 1 &&
                  e.args.front() == "*";
  return out;
}

}  // namespace linesman::tools::doctor
