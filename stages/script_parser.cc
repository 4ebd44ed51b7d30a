#include "stages/script_parser.h"

#include <algorithm>
#include <array>
#include <set>
#include <initializer_list>
#include <optional>

namespace ce::stages {

namespace {

// Deeper nesting than this is refused rather than risking the stack.
constexpr int max_depth = 400;

enum class TokenType { word, op, newline, end };

struct Token {
  TokenType type = TokenType::end;
  std::string text;
  std::size_t begin = 0;
  std::size_t end = 0;
  bool quoted = false;  // any quoting in a word: then it is never a reserved word
};

const char* const operators[] = {";;&", "<<<", "<<-", "&>>", "&&", "||", ";;", ";&", "|&", "<<", ">>", "<&",
                                 ">&",  "<>",  ">|",  "&>",  ";",  "&",  "|",  "<",  ">",  "(",  ")"};

bool is_redirect_op(const std::string& op) {
  static const char* const redirects[] = {"<", ">", ">>", "<<", "<<-", "<<<", "<&", ">&", "<>", ">|", "&>", "&>>"};
  for (const char* r : redirects)
    if (op == r) return true;
  return false;
}

bool is_name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_name_char(char c) { return is_name_start(c) || (c >= '0' && c <= '9'); }

bool is_name(std::string_view w) {
  return !w.empty() && is_name_start(w[0]) && std::all_of(w.begin() + 1, w.end(), is_name_char);
}

// NAME=... or NAME[...]=... or NAME+=...
bool is_assignment(std::string_view w) {
  auto eq = w.find('=');
  if (eq == std::string_view::npos || eq == 0) return false;
  auto name = w.substr(0, eq);
  if (name.back() == '+') name.remove_suffix(1);
  auto bracket = name.find('[');
  if (bracket != std::string_view::npos) {
    if (name.back() != ']') return false;
    name = name.substr(0, bracket);
  }
  return is_name(name);
}

// NAME=, NAME+=, NAME[...]=, NAME[...]+=: a word that may take an array value.
bool is_assignment_prefix(std::string_view w) {
  if (w.empty() || !is_name_start(w[0]) || w.back() != '=') return false;
  std::size_t i = 1;
  while (i < w.size() && is_name_char(w[i])) ++i;
  if (i < w.size() && w[i] == '[') {
    auto close = w.find(']', i);
    if (close == std::string_view::npos) return false;
    i = close + 1;
  }
  if (i < w.size() && w[i] == '+') ++i;
  return i + 1 == w.size();
}

std::string describe(const Token& t) {
  switch (t.type) {
    case TokenType::newline: return "newline";
    case TokenType::end: return "end of file";
    default: return t.text;
  }
}

// The here-document delimiter after quote removal.
std::string remove_quotes(std::string_view raw) {
  std::string out;
  for (std::size_t i = 0; i < raw.size(); ++i) {
    char c = raw[i];
    if (c == '\\' && i + 1 < raw.size()) {
      out += raw[++i];
    } else if (c == '\'' || c == '"') {
      char q = c;
      while (++i < raw.size() && raw[i] != q) out += raw[i];
    } else if (c == '$' && i + 1 < raw.size() && (raw[i + 1] == '\'' || raw[i + 1] == '"')) {
      continue;
    } else {
      out += c;
    }
  }
  return out;
}

class Parser {
 public:
  explicit Parser(std::string_view text) : src_(text) {
    line_starts_.push_back(0);
    for (std::size_t i = 0; i < src_.size(); ++i)
      if (src_[i] == '\n') line_starts_.push_back(i + 1);
  }

  ParsedScript run() {
    for (;;) {
      skip_linebreaks();
      Token t = peek();
      if (t.type == TokenType::end) break;
      begin_unit(t);
      parse_and_or(/*top=*/true);
      t = peek();
      if (t.type == TokenType::op && (t.text == ";" || t.text == "&")) {
        consume();
        end_unit();
      } else if (t.type == TokenType::newline || t.type == TokenType::end) {
        take_continued_line(t);
        end_unit();
      } else {
        unexpected(t);
      }
    }
    finish_spans();
    return std::move(result_);
  }

 private:
  struct Heredoc {
    std::string delimiter;
    bool strip_tabs = false;
    bool quoted = false;
    std::size_t owner = 0;  // index of the unit it belongs to
    std::size_t at = 0;     // offset of the << operator
  };
  struct Body {
    std::size_t owner, begin, end;
  };

  // ---- locations and errors ----------------------------------------------

  SourceLocation location(std::size_t offset) const {
    auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), offset);
    auto line = static_cast<int>(it - line_starts_.begin());
    return {line, static_cast<int>(offset - line_starts_[static_cast<std::size_t>(line - 1)]) + 1};
  }

  [[noreturn]] void fail(std::size_t offset, std::string message) const {
    throw SyntaxError(location(offset), std::move(message));
  }

  [[noreturn]] void unexpected(const Token& t) const {
    if (t.type == TokenType::end) fail(t.begin, "syntax error: unexpected end of file");
    fail(t.begin, "syntax error near unexpected token `" + describe(t) + "'");
  }

  [[noreturn]] void unclosed(const Token& opener, const std::string& closer) const {
    fail(opener.begin, "`" + opener.text + "' is not closed: expected `" + closer + "' before the end of the file");
  }

  void enter(std::size_t offset) {
    if (++depth_ > max_depth) fail(offset, "nesting too deep (more than " + std::to_string(max_depth) + " levels)");
  }
  void leave() { --depth_; }

  // ---- lexer ---------------------------------------------------------------

  bool at_end() const { return pos_ >= src_.size(); }
  // Past a backslash and the character it escapes (or the end of the text).
  void skip2() { pos_ = std::min(pos_ + 2, src_.size()); }
  char ch(std::size_t at) const { return at < src_.size() ? src_[at] : '\0'; }

  void skip_blanks() {
    while (!at_end()) {
      char c = src_[pos_];
      if (c == ' ' || c == '\t') {
        ++pos_;
      } else if (c == '\\' && ch(pos_ + 1) == '\n') {
        skip2();
      } else {
        break;
      }
    }
  }

  Token lex() {
    skip_blanks();
    if (ch(pos_) == '#') {
      while (!at_end() && src_[pos_] != '\n') ++pos_;
    }
    Token t;
    t.begin = pos_;
    if (at_end()) {
      t.type = TokenType::end;
      t.end = pos_;
      if (!pending_.empty()) {
        // bash accepts this with a warning
        for (const auto& h : pending_)
          result_.warnings.emplace_back(location(h.at), "here-document delimited by end of file (wanted `" +
                                                            h.delimiter + "')");
        pending_.clear();
      }
      return t;
    }
    char c = src_[pos_];
    if (c == '\n') {
      ++pos_;
      t.type = TokenType::newline;
      t.text = "\n";
      t.end = pos_;
      read_heredoc_bodies();
      return t;
    }
    if ((c == '<' || c == '>') && ch(pos_ + 1) == '(') return read_word();
    for (const char* op : operators) {
      std::string_view o(op);
      if (src_.substr(pos_, o.size()) == o) {
        t.type = TokenType::op;
        t.text = std::string(o);
        pos_ += o.size();
        t.end = pos_;
        return t;
      }
    }
    return read_word();
  }

  Token read_word() {
    bool continuation = false;
    Token t;
    t.type = TokenType::word;
    t.begin = pos_;
    if ((ch(pos_) == '<' || ch(pos_) == '>') && ch(pos_ + 1) == '(') {
      ++pos_;  // process substitution: <( ... ) or >( ... )
      scan_comsub();
      t.quoted = true;
    }
    while (!at_end()) {
      char c = src_[pos_];
      if (c == ' ' || c == '\t' || c == '\n' || c == ';' || c == '&' || c == '|' || c == '<' || c == '>' ||
          c == ')') {
        break;
      }
      if (c == '[' && assignment_allowed_ && pos_ > t.begin &&
          is_name(src_.substr(t.begin, pos_ - t.begin))) {
        // NAME[subscript] where an assignment may stand: bash reads the
        // subscript as one piece, blanks and all.
        std::size_t open = pos_++;
        scan_matched('[', ']', open, "[");
        continue;
      }
      if (c == '(') {
        if (is_assignment_prefix(src_.substr(t.begin, pos_ - t.begin))) {
          scan_array();
          continue;
        }
        break;
      }
      if (c == '\\') {
        if (ch(pos_ + 1) == '\n') {
          continuation = true;
        } else {
          t.quoted = true;
        }
        skip2();
      } else if (c == '\'') {
        scan_single_quote();
        t.quoted = true;
      } else if (c == '"') {
        scan_double_quote();
        t.quoted = true;
      } else if (c == '`') {
        scan_backquote();
        t.quoted = true;
      } else if (c == '$') {
        if (ch(pos_ + 1) == '\'' || ch(pos_ + 1) == '"') t.quoted = true;
        scan_dollar(/*in_double_quotes=*/false);
      } else {
        ++pos_;
      }
    }
    t.end = pos_;
    t.text = std::string(src_.substr(t.begin, t.end - t.begin));
    if (continuation && !t.quoted) {
      // `\` newline inside an unquoted word joins it: `fi\<newline>` is `fi`.
      std::string joined;
      for (std::size_t i = 0; i < t.text.size(); ++i) {
        if (t.text[i] == '\\' && i + 1 < t.text.size() && t.text[i + 1] == '\n') {
          ++i;
          continue;
        }
        joined += t.text[i];
      }
      t.text = std::move(joined);
    }
    return t;
  }

  void scan_single_quote() {
    std::size_t open = pos_++;
    auto close = src_.find('\'', pos_);
    if (close == std::string_view::npos)
      fail(open, "unterminated single quote: no matching `'' before the end of the file");
    pos_ = close + 1;
  }

  // From `open` (already passed) to the unescaped `close`; backslash escapes.
  void scan_to(char close, std::size_t open, const char* unterminated) {
    for (;;) {
      if (at_end()) fail(open, unterminated);
      char c = src_[pos_];
      if (c == '\\') {
        skip2();
      } else {
        ++pos_;
        if (c == close) return;
      }
    }
  }

  void scan_ansi_quote() {  // $'...'
    std::size_t open = pos_;
    skip2();
    scan_to('\'', open, "unterminated $'...' quote: no matching `'' before the end of the file");
  }

  void scan_double_quote() {
    std::size_t open = pos_++;
    enter(open);
    for (;;) {
      if (at_end()) fail(open, "unterminated double quote: no matching `\"' before the end of the file");
      char c = src_[pos_];
      if (c == '"') {
        ++pos_;
        break;
      }
      if (c == '\\') {
        skip2();
      } else if (c == '`') {
        scan_backquote();
      } else if (c == '$') {
        scan_dollar(/*in_double_quotes=*/true);
      } else {
        ++pos_;
      }
    }
    leave();
  }

  void scan_backquote() {
    std::size_t open = pos_++;
    scan_to('`', open, "unterminated command substitution: no matching ``' before the end of the file");
  }

  // At a '$'.
  void scan_dollar(bool in_double_quotes) {
    char next = ch(pos_ + 1);
    if (next == '\'' && !in_double_quotes) {
      scan_ansi_quote();
    } else if (next == '"' && !in_double_quotes) {
      ++pos_;
      scan_double_quote();
    } else if (next == '(') {
      if (ch(pos_ + 2) == '(') {
        // $(( arithmetic )), unless it is $( (subshell) ... ), as bash decides
        std::size_t save = pos_;
        pos_ += 3;
        if (try_scan_arithmetic()) return;
        pos_ = save;
      }
      ++pos_;
      scan_comsub();
    } else if (next == '{') {
      scan_brace_parameter();
    } else if (next == '[') {
      std::size_t open = pos_;
      skip2();
      scan_matched('[', ']', open, "$[");
    } else {
      ++pos_;
    }
  }

  // If a backslash, a quote, a backquote or a $ starts here, passes what it
  // starts (outside double quotes) and returns true.
  bool scan_quoted_piece() {
    switch (src_[pos_]) {
      case '\\': skip2(); return true;
      case '\'': scan_single_quote(); return true;
      case '"': scan_double_quote(); return true;
      case '`': scan_backquote(); return true;
      case '$': scan_dollar(false); return true;
      default: return false;
    }
  }

  // After "((" (or "$(("): the inner text up to the ')' that closes the
  // second '(', which must be followed by ')'. On failure the caller puts
  // the position back; everything else the attempt changed is put back
  // here: a $( ) inside may have thrown halfway (leaving the nesting counts
  // raised, which made every later unit record nothing and crashed
  // finish_spans, found by fuzzing) or read here-documents that the second
  // reading, as a subshell, reads again.
  //
  // An attempt that failed is remembered by where it started and the state
  // that decides it, and not made again: nested "$((" that are not
  // arithmetic would otherwise be tried twice at every level, each try
  // reading all the levels within (2^n; a fuzzed input of 500 bytes took
  // five minutes).
  bool try_scan_arithmetic() {
    std::array<std::size_t, 4> key = {pos_, pending_.size(), static_cast<std::size_t>(depth_),
                                      static_cast<std::size_t>(word_nesting_)};
    if (failed_arithmetic_.count(key)) return false;
    ParserState before = save_state();
    bool scanned = false;
    try {
      scanned = scan_arithmetic();
    } catch (const SyntaxError&) {
    }
    if (!scanned) {
      restore_state(std::move(before));
      failed_arithmetic_.insert(key);
    }
    return scanned;
  }

  bool scan_arithmetic() {
    int level = 1;
    while (!at_end()) {
      char c = src_[pos_];
      if (c == '(') {
        ++level;
        ++pos_;
      } else if (c == ')') {
        ++pos_;
        if (--level == 0) {
          if (ch(pos_) != ')') return false;
          ++pos_;
          return true;
        }
      } else if (!scan_quoted_piece()) {
        ++pos_;
      }
    }
    return false;
  }

  // What parsing changes besides the position, for try_scan_arithmetic.
  struct ParserState {
    std::optional<Token> ahead;
    std::vector<Heredoc> pending;
    std::size_t bodies, warnings, unit_tokens, unit_end;
    int depth, word_nesting;
    bool assignment_allowed, case_patterns, declaration;
  };

  ParserState save_state() const {
    return {ahead_,    pending_,      bodies_.size(),      result_.warnings.size(), unit_tokens_.size(),
            unit_end_, depth_,        word_nesting_,       assignment_allowed_,     case_patterns_,
            declaration_};
  }

  void restore_state(ParserState s) {
    ahead_ = std::move(s.ahead);
    pending_ = std::move(s.pending);
    bodies_.resize(s.bodies);
    result_.warnings.resize(s.warnings);
    unit_tokens_.resize(s.unit_tokens);
    unit_end_ = s.unit_end;
    depth_ = s.depth;
    word_nesting_ = s.word_nesting;
    assignment_allowed_ = s.assignment_allowed;
    case_patterns_ = s.case_patterns;
    declaration_ = s.declaration;
  }

  void scan_matched(char open_char, char close_char, std::size_t open, const char* what) {
    int level = 1;
    enter(open);
    for (;;) {
      if (at_end())
        fail(open, std::string("unterminated `") + what + "': no matching `" + close_char +
                       "' before the end of the file");
      char c = src_[pos_];
      if (c == open_char && open_char != '{') {
        // Inside ${ }, only another ${ nests (scan_dollar takes it), as in bash.
        ++level;
        ++pos_;
      } else if (c == close_char) {
        ++pos_;
        if (--level == 0) break;
      } else if (!scan_quoted_piece()) {
        ++pos_;
      }
    }
    leave();
  }

  void scan_brace_parameter() {
    std::size_t open = pos_;
    skip2();
    scan_matched('{', '}', open, "${");
  }

  // At the '(' of $( ... ), <( ... ) or >( ... ): the commands inside are
  // parsed, as bash 5 does.
  void scan_comsub() {
    std::size_t open = pos_ - 1;  // the '$', '<' or '>'
    ++pos_;
    enter(open);
    ++word_nesting_;
    std::optional<Token> saved = std::move(ahead_);
    ahead_.reset();
    parse_compound_list({}, /*allow_empty=*/true);
    Token t = peek();
    if (t.type == TokenType::end)
      fail(open, "unterminated command substitution: no matching `)' before the end of the file");
    if (!(t.type == TokenType::op && t.text == ")")) unexpected(t);
    ahead_ = std::move(saved);
    --word_nesting_;
    leave();
  }

  // At the '(' of NAME=( ... ).
  void scan_array() {
    std::size_t open = pos_++;
    for (;;) {
      while (!at_end()) {
        char c = src_[pos_];
        if (c == ' ' || c == '\t' || c == '\n') {
          ++pos_;
        } else if (c == '\\' && ch(pos_ + 1) == '\n') {
          skip2();
        } else if (c == '#') {
          while (!at_end() && src_[pos_] != '\n') ++pos_;
        } else {
          break;
        }
      }
      if (at_end()) fail(open, "unterminated array assignment: no matching `)' before the end of the file");
      if (src_[pos_] == ')') {
        ++pos_;
        return;
      }
      Token w = read_word();
      if (w.end == w.begin) {
        Token bad;
        bad.type = TokenType::op;
        bad.begin = pos_;
        bad.text = std::string(1, src_[pos_]);
        unexpected(bad);
      }
    }
  }

  void read_heredoc_bodies() {
    auto pending = std::move(pending_);
    pending_.clear();
    for (const auto& h : pending) {
      std::size_t begin = pos_;
      for (;;) {
        if (at_end()) {
          result_.warnings.emplace_back(location(h.at), "here-document delimited by end of file (wanted `" +
                                                            h.delimiter + "')");
          break;
        }
        std::size_t line_end = src_.find('\n', pos_);
        if (line_end == std::string_view::npos) line_end = src_.size();
        // In an unquoted here-document, backslash-newline joins lines before
        // the delimiter is looked for.
        while (!h.quoted && line_end < src_.size()) {
          std::size_t backslashes = 0;
          while (backslashes < line_end - pos_ && src_[line_end - 1 - backslashes] == '\\') ++backslashes;
          if (backslashes % 2 == 0) break;
          std::size_t next_end = src_.find('\n', line_end + 1);
          line_end = next_end == std::string_view::npos ? src_.size() : next_end;
        }
        std::string_view line = src_.substr(pos_, line_end - pos_);
        if (h.strip_tabs) {
          while (!line.empty() && line[0] == '\t') line.remove_prefix(1);
        }
        pos_ = line_end < src_.size() ? line_end + 1 : line_end;
        if (line == h.delimiter) break;
      }
      bodies_.push_back({h.owner, begin, pos_});
      std::string body = "<<" + std::string(src_.substr(begin, pos_ - begin));
      if (h.owner < result_.units.size()) {
        result_.units[h.owner].normalized += " " + body;
        result_.units[h.owner].normalized_rest += " " + body;
      } else if (in_unit_) {
        unit_tokens_.push_back(body);
      }
    }
  }

  // ---- token stream --------------------------------------------------------

  const Token& peek() {
    if (!ahead_) ahead_ = lex();
    return *ahead_;
  }

  // Takes the next token as part of the current unit's text.
  Token consume() {
    Token t = peek();
    ahead_.reset();
    note_for_assignments(t);
    record(t, t.type == TokenType::newline ? ";" : t.text);
    return t;
  }

  // Whether the next word may be an assignment, as bash's
  // assignment_acceptable() decides: at the start of a command, after
  // assignments, and among the arguments of declaration builtins.
  void note_for_assignments(const Token& t) {
    if (case_patterns_) {  // a case pattern is never an assignment
      assignment_allowed_ = false;
      return;
    }
    if (t.type != TokenType::word) {
      assignment_allowed_ = !(t.type == TokenType::op && is_redirect_op(t.text));
      declaration_ = false;
      return;
    }
    static const char* const starters[] = {"then", "do", "else", "elif", "if", "while", "until", "{", "!", "time", "in"};
    static const char* const declarations[] = {"declare", "typeset", "local", "export", "readonly"};
    if (!t.quoted) {
      for (const char* w : declarations)
        if (t.text == w && assignment_allowed_) declaration_ = true;
      for (const char* w : starters)
        if (t.text == w && assignment_allowed_) return;
    }
    assignment_allowed_ = declaration_ || is_assignment(t.text);
  }

  // Records the text from `begin` to the lexer's position as one word: what
  // (( )), for (( )) and =~ scan without tokens.
  void record_scanned(std::size_t begin) {
    Token t;
    t.type = TokenType::word;
    t.begin = begin;
    t.end = pos_;
    t.text = std::string(src_.substr(begin, pos_ - begin));
    record(t, t.text);
  }

  void record(const Token& t, const std::string& normalized) {
    if (!in_unit_ || word_nesting_ > 0) return;
    unit_end_ = std::max(unit_end_, t.end);
    unit_tokens_.push_back(normalized);
  }

  // Newlines where bash allows them without ending anything.
  void skip_linebreaks() {
    while (peek().type == TokenType::newline) {
      ahead_.reset();
      assignment_allowed_ = !case_patterns_;
      declaration_ = false;
    }
  }

  bool is_reserved(const Token& t, std::string_view word) const {
    return t.type == TokenType::word && !t.quoted && t.text == word;
  }

  bool is_op(const Token& t, std::string_view op) const { return t.type == TokenType::op && t.text == op; }

  void expect_reserved(std::string_view word, const Token& opener) {
    const Token& t = peek();
    if (is_reserved(t, word)) {
      consume();
      return;
    }
    if (t.type == TokenType::end) unclosed(opener, std::string(word));
    unexpected(t);
  }

  // ---- units ---------------------------------------------------------------

  void begin_unit(const Token& first) {
    in_unit_ = true;
    unit_ = Unit{};
    unit_tokens_.clear();
    unit_begin_ = first.begin;
    unit_end_ = first.begin;
  }

  // `cmd \` followed by a line holding only a comment (or nothing): bash
  // removes the backslash-newline, so that line joins the command's line and
  // the command ends at that line's newline (a `\` ending the comment itself
  // continues nothing). The unit then takes the rest of that line and its
  // newline, as it takes a terminating `;`, so that its last line is bash's.
  // Only a live `\` can put the newline on a later line than the last token.
  void take_continued_line(const Token& terminator) {
    if (unit_end_ > unit_begin_ && location(terminator.begin).line > location(unit_end_ - 1).line)
      unit_end_ = terminator.end;
  }

  void end_unit() {
    in_unit_ = false;
    // `a;` runs as `a` does: the terminating `;` is not part of the text.
    if (!unit_tokens_.empty() && unit_tokens_.back() == ";") unit_tokens_.pop_back();
    std::string normalized, rest;
    for (std::size_t i = 0; i < unit_tokens_.size(); ++i) {
      normalized += (i ? " " : "") + unit_tokens_[i];
      if (i >= 2) rest += (rest.empty() ? "" : " ") + unit_tokens_[i];
    }
    unit_.normalized = std::move(normalized);
    unit_.normalized_rest = std::move(rest);
    unit_.spans.emplace_back(unit_begin_, unit_end_);
    result_.units.push_back(std::move(unit_));
  }

  // Splits each unit's range around the here-document bodies of other units
  // and adds its own bodies; then derives lines.
  void finish_spans() {
    for (std::size_t i = 0; i < result_.units.size(); ++i) {
      Unit& u = result_.units[i];
      auto [begin, end] = u.spans.front();
      std::vector<std::pair<std::size_t, std::size_t>> spans;
      std::size_t cursor = begin;
      for (const auto& b : bodies_) {
        if (b.begin >= begin && b.end <= end) {
          if (b.owner == i) continue;
          if (b.begin > cursor) spans.emplace_back(cursor, b.begin);
          cursor = std::max(cursor, b.end);
        }
      }
      if (end > cursor) spans.emplace_back(cursor, end);
      for (const auto& b : bodies_)
        if (b.owner == i && !(b.begin >= begin && b.end <= end)) spans.emplace_back(b.begin, b.end);
      std::sort(spans.begin(), spans.end());
      u.spans = std::move(spans);
      auto first = location(u.spans.front().first);
      u.first_line = first.line;
      u.first_column = first.column;
      std::size_t last = u.spans.back().second;
      u.last_line = location(last > u.spans.front().first ? last - 1 : last).line;
    }
  }

  // ---- grammar ---------------------------------------------------------------

  bool at_list_end(const Token& t, std::initializer_list<std::string_view> stops) const {
    if (t.type == TokenType::end) return true;
    if (t.type == TokenType::op &&
        (t.text == ")" || t.text == ";;" || t.text == ";&" || t.text == ";;&"))
      return true;
    for (auto s : stops)
      if (is_reserved(t, s)) return true;
    return false;
  }

  void parse_compound_list(std::initializer_list<std::string_view> stops, bool allow_empty) {
    skip_linebreaks();
    int count = 0;
    for (;;) {
      Token t = peek();
      if (at_list_end(t, stops)) {
        if (count == 0 && !allow_empty) unexpected(t);
        return;
      }
      parse_and_or(/*top=*/false);
      ++count;
      t = peek();
      if (is_op(t, ";") || is_op(t, "&") || t.type == TokenType::newline) {
        consume();
        skip_linebreaks();
      } else {
        return;
      }
    }
  }

  void parse_and_or(bool top) {
    std::string leading = parse_pipeline();
    if (top) {
      unit_.leading_word = leading;
      const Token& t = peek();
      unit_.leading_operator = (is_op(t, "&&") || is_op(t, "||")) ? t.text : "";
    }
    for (;;) {
      const Token& t = peek();
      if (!(is_op(t, "&&") || is_op(t, "||"))) return;
      consume();
      skip_linebreaks();
      parse_pipeline();
    }
  }

  // Returns the command's single plain word when the pipeline is just that.
  std::string parse_pipeline() {
    bool plain = true;
    if (is_reserved(peek(), "time")) {
      consume();
      plain = false;
      if (is_reserved(peek(), "-p")) consume();
      const Token& t = peek();
      if (t.type == TokenType::newline || t.type == TokenType::end || is_op(t, ";") || is_op(t, "&")) return {};
    }
    while (is_reserved(peek(), "!")) {
      consume();
      plain = false;
    }
    std::string word = parse_command();
    for (;;) {
      const Token& t = peek();
      if (!(is_op(t, "|") || is_op(t, "|&"))) break;
      plain = false;
      consume();
      skip_linebreaks();
      parse_command();
    }
    return plain ? word : std::string();
  }

  bool starts_compound(const Token& t) const {
    static const char* const words[] = {"{", "if", "while", "until", "for", "select", "case", "[[", "function"};
    if (is_op(t, "(")) return true;
    for (const char* w : words)
      if (is_reserved(t, w)) return true;
    return false;
  }

  // Returns the command's word when it is a simple command of one plain word.
  std::string parse_command() {
    Token t = peek();
    enter(t.begin);
    std::string word;
    if (t.type == TokenType::word && !t.quoted) {
      static const char* const misplaced[] = {"then", "else", "elif", "fi", "do", "done", "esac", "}", "]]"};
      for (const char* m : misplaced)
        if (t.text == m) unexpected(t);
    }
    if (starts_compound(t)) {
      parse_compound_command();
      parse_redirects();
    } else if (is_reserved(t, "coproc")) {
      consume();
      const Token& name = peek();
      if (name.type == TokenType::word && !starts_compound(name)) {
        std::size_t after = name.end;
        while (ch(after) == ' ' || ch(after) == '\t') ++after;
        if (ch(after) == '{' || ch(after) == '(') consume();
      }
      parse_command();
    } else if (is_op(t, "(")) {
      parse_compound_command();
    } else {
      word = parse_simple_command();
    }
    leave();
    return word;
  }

  void parse_redirects() {
    for (;;) {
      const Token& t = peek();
      if (t.type == TokenType::op && is_redirect_op(t.text)) {
        parse_redirect();
      } else if (t.type == TokenType::word && is_redirect_prefix(t)) {
        consume();
        parse_redirect();
      } else {
        return;
      }
    }
  }

  // 2>file, {fd}>file: a word glued to a following redirection operator.
  bool is_redirect_prefix(const Token& t) const {
    char next = ch(t.end);
    if (next != '<' && next != '>') return false;
    if (t.text.empty()) return false;
    if (std::all_of(t.text.begin(), t.text.end(), [](char c) { return c >= '0' && c <= '9'; })) return true;
    if (t.text.size() > 2 && t.text.front() == '{' && t.text.back() == '}') {
      return is_name_start(t.text[1]) &&
             std::all_of(t.text.begin() + 1, t.text.end() - 1, [](char c) { return is_name_char(c); });
    }
    return false;
  }

  void parse_redirect() {
    Token op = consume();
    Token target = peek();
    if (target.type != TokenType::word) unexpected(target);
    consume();
    if (op.text == "<<" || op.text == "<<-") {
      Heredoc h;
      h.delimiter = remove_quotes(target.text);
      h.quoted = target.quoted;
      h.strip_tabs = op.text == "<<-";
      h.owner = result_.units.size();  // the unit being parsed gets this index
      h.at = op.begin;
      pending_.push_back(std::move(h));
    }
  }

  std::string parse_simple_command() {
    SimpleCommand command;
    Token first = peek();
    auto where = location(first.begin);
    command.line = where.line;
    command.column = where.column;
    bool redirected = false;
    for (;;) {
      const Token& t = peek();
      if (t.type == TokenType::op && is_redirect_op(t.text)) {
        parse_redirect();
        redirected = true;
        continue;
      }
      if (t.type != TokenType::word) break;
      if (is_redirect_prefix(t)) {
        consume();
        parse_redirect();
        redirected = true;
        continue;
      }
      Token w = consume();
      command.words.push_back(w.text);
      if (command.words.size() == 1 && !redirected && is_op(peek(), "(")) {
        // NAME ( ) compound-command: a function definition
        consume();
        const Token& close = peek();
        if (!is_op(close, ")")) unexpected(close);
        consume();
        skip_linebreaks();
        const Token& body = peek();
        if (!starts_compound(body)) unexpected(body);
        parse_compound_command();
        parse_redirects();
        result_commands(std::move(command));
        return {};
      }
    }
    if (command.words.empty() && !redirected) unexpected(peek());
    bool plain = command.words.size() == 1 && !redirected && !first.quoted;
    std::string word = plain ? command.words[0] : std::string();
    result_commands(std::move(command));
    return word;
  }

  void result_commands(SimpleCommand command) {
    if (in_unit_ && !command.words.empty()) unit_.commands.push_back(std::move(command));
  }

  void parse_compound_command() {
    Token t = peek();
    if (is_op(t, "(")) {
      if (ch(t.end) == '(') {
        // (( arithmetic )), unless it turns out to be ( (subshell) )
        ahead_.reset();
        std::size_t save = pos_;
        pos_ = t.end + 1;
        if (try_scan_arithmetic()) {
          record_scanned(t.begin);
          return;
        }
        pos_ = save;
        ahead_ = t;
      }
      consume();
      parse_compound_list({}, /*allow_empty=*/false);
      const Token& close = peek();
      if (close.type == TokenType::end) unclosed(t, ")");
      if (!is_op(close, ")")) unexpected(close);
      consume();
      return;
    }
    if (is_reserved(t, "{")) {
      consume();
      parse_compound_list({"}"}, false);
      expect_reserved("}", t);
    } else if (is_reserved(t, "if")) {
      consume();
      parse_compound_list({"then"}, false);
      expect_reserved("then", t);
      parse_compound_list({"elif", "else", "fi"}, false);
      for (;;) {
        const Token& k = peek();
        if (is_reserved(k, "elif")) {
          consume();
          parse_compound_list({"then"}, false);
          expect_reserved("then", t);
          parse_compound_list({"elif", "else", "fi"}, false);
        } else if (is_reserved(k, "else")) {
          consume();
          parse_compound_list({"fi"}, false);
          expect_reserved("fi", t);
          break;
        } else {
          expect_reserved("fi", t);
          break;
        }
      }
    } else if (is_reserved(t, "while") || is_reserved(t, "until")) {
      consume();
      parse_compound_list({"do"}, false);
      expect_reserved("do", t);
      parse_compound_list({"done"}, false);
      expect_reserved("done", t);
    } else if (is_reserved(t, "for") || is_reserved(t, "select")) {
      parse_for(t);
    } else if (is_reserved(t, "case")) {
      parse_case(t);
    } else if (is_reserved(t, "[[")) {
      parse_conditional(t);
    } else if (is_reserved(t, "function")) {
      consume();
      const Token& name = peek();
      if (name.type != TokenType::word) unexpected(name);
      consume();
      if (is_op(peek(), "(")) {
        consume();
        if (!is_op(peek(), ")")) unexpected(peek());
        consume();
      }
      skip_linebreaks();
      const Token& body = peek();
      if (!starts_compound(body) || is_reserved(body, "function")) unexpected(body);
      parse_compound_command();
    } else {
      unexpected(t);
    }
  }

  void parse_for(const Token& keyword) {
    consume();
    Token t = peek();
    if (is_op(t, "(") && ch(t.end) == '(' && keyword.text == "for") {
      ahead_.reset();
      pos_ = t.end + 1;
      if (!try_scan_arithmetic()) fail(t.begin, "syntax error: bad arithmetic `for ((...))' header");
      record_scanned(t.begin);
      if (is_op(peek(), ";")) consume();
      skip_linebreaks();
    } else {
      if (t.type != TokenType::word) unexpected(t);
      consume();  // the variable's name
      skip_linebreaks();
      if (is_reserved(peek(), "in")) {
        consume();
        while (peek().type == TokenType::word) consume();
        const Token& sep = peek();
        if (is_op(sep, ";") || sep.type == TokenType::newline) {
          consume();
        } else if (!is_reserved(sep, "do")) {
          unexpected(sep);
        }
      } else if (is_op(peek(), ";")) {
        consume();
      }
      skip_linebreaks();
    }
    const Token& body = peek();
    if (is_reserved(body, "{")) {
      parse_compound_command();
      return;
    }
    if (body.type == TokenType::end) unclosed(keyword, "do");
    expect_reserved("do", keyword);
    parse_compound_list({"done"}, false);
    expect_reserved("done", keyword);
  }

  void parse_case(const Token& keyword) {
    consume();
    const Token& subject = peek();
    if (subject.type != TokenType::word) unexpected(subject);
    consume();
    skip_linebreaks();
    if (peek().type == TokenType::end) unclosed(keyword, "in");
    case_patterns_ = true;
    expect_reserved("in", keyword);
    for (;;) {
      case_patterns_ = true;
      skip_linebreaks();
      Token t = peek();
      if (is_reserved(t, "esac")) {
        case_patterns_ = false;
        consume();
        return;
      }
      if (t.type == TokenType::end) unclosed(keyword, "esac");
      if (is_op(t, "(")) consume();
      for (;;) {
        const Token& pattern = peek();
        if (pattern.type != TokenType::word) unexpected(pattern);
        consume();
        const Token& next = peek();
        if (is_op(next, "|")) {
          consume();
          continue;
        }
        if (is_op(next, ")")) {
          case_patterns_ = false;
          consume();
          break;
        }
        unexpected(next);
      }
      parse_compound_list({"esac"}, /*allow_empty=*/true);
      const Token& end = peek();
      if (is_op(end, ";;") || is_op(end, ";&") || is_op(end, ";;&")) {
        consume();
        continue;
      }
      if (is_reserved(end, "esac")) {
        consume();
        return;
      }
      if (end.type == TokenType::end) unclosed(keyword, "esac");
      unexpected(end);
    }
  }

  void parse_conditional(const Token& open) {
    consume();
    bool after_operator = true;  // newlines are allowed after && and ||
    int items = 0;
    for (;;) {
      const Token& t = peek();
      if (t.type == TokenType::end) unclosed(open, "]]");
      if (t.type == TokenType::newline) {
        if (!after_operator) fail(t.begin, "syntax error in conditional expression: unexpected token `newline'");
        ahead_.reset();
        continue;
      }
      if (t.type == TokenType::word && !t.quoted && t.text == "]]") {
        if (items == 0) unexpected(t);
        consume();
        return;
      }
      if (t.type == TokenType::op && (t.text == ";" || t.text == "&" || t.text == "|" || t.text == ";;" ||
                                      t.text == "|&" || t.text == ";&" || t.text == ";;&")) {
        fail(t.begin, "syntax error in conditional expression: unexpected token `" + t.text + "'");
      }
      Token taken = consume();
      ++items;
      after_operator = taken.type == TokenType::op && (taken.text == "&&" || taken.text == "||" || taken.text == "(");
      if (taken.type == TokenType::word && !taken.quoted && taken.text == "!") after_operator = true;
      if (taken.type == TokenType::word && !taken.quoted && taken.text == "=~") scan_regex();
    }
  }

  // The right side of =~: one word in which ( ) and | are literal.
  void scan_regex() {
    skip_blanks();
    std::size_t begin = pos_;
    int level = 0;
    while (!at_end()) {
      char c = src_[pos_];
      if ((c == ' ' || c == '\t' || c == '\n') && level == 0) break;
      if (c == '(') {
        ++level;
        ++pos_;
      } else if (c == ')') {
        if (level == 0) break;
        --level;
        ++pos_;
      } else if (!scan_quoted_piece()) {
        ++pos_;
      }
    }
    if (pos_ > src_.size()) pos_ = src_.size();
    record_scanned(begin);
  }

  std::string_view src_;
  std::size_t pos_ = 0;
  std::vector<std::size_t> line_starts_;
  std::optional<Token> ahead_;
  std::vector<Heredoc> pending_;
  std::set<std::array<std::size_t, 4>> failed_arithmetic_;  // try_scan_arithmetic's memory
  std::vector<Body> bodies_;
  int depth_ = 0;
  int word_nesting_ = 0;
  bool assignment_allowed_ = true;
  bool case_patterns_ = false;  // the next words are case patterns
  bool declaration_ = false;

  bool in_unit_ = false;
  Unit unit_;
  std::vector<std::string> unit_tokens_;
  std::size_t unit_begin_ = 0;
  std::size_t unit_end_ = 0;
  ParsedScript result_;
};

}  // namespace

ParsedScript parse_script(std::string_view text) { return Parser(text).run(); }

std::string unit_source(std::string_view text, const Unit& unit) {
  std::string out;
  for (std::size_t i = 0; i < unit.spans.size(); ++i) {
    auto [begin, end] = unit.spans[i];
    if (i > 0) {
      auto gap = text.substr(unit.spans[i - 1].second, begin - unit.spans[i - 1].second);
      out.append(static_cast<std::size_t>(std::count(gap.begin(), gap.end(), '\n')), '\n');
    }
    out.append(text.substr(begin, end - begin));
  }
  return out;
}

}  // namespace ce::stages
