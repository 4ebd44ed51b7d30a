#include <catch2/catch.hpp>

#include "stages/script_parser.h"

using namespace ce::stages;

namespace {

struct Split {
  std::vector<std::pair<int, int>> lines;
  std::vector<std::string> normalized;
};

Split split(std::string_view text) {
  Split out;
  for (const auto& u : parse_script(text).units) {
    out.lines.emplace_back(u.first_line, u.last_line);
    out.normalized.push_back(u.normalized);
  }
  return out;
}

std::string error_of(std::string_view text) {
  try {
    parse_script(text);
  } catch (const SyntaxError& e) {
    return std::to_string(e.where().line) + ":" + std::to_string(e.where().column) + ": " + e.message();
  }
  return "no error";
}

using Lines = std::vector<std::pair<int, int>>;

}  // namespace

TEST_CASE("simple lines, semicolons and & separate top-level commands", "[parser]") {
  auto s = split("a=1\necho one; echo two & echo three\n\n# comment\nexport B\n");
  CHECK(s.lines == Lines{{1, 1}, {2, 2}, {2, 2}, {2, 2}, {5, 5}});
  CHECK(s.normalized == std::vector<std::string>{"a=1", "echo one", "echo two &", "echo three", "export B"});
}

TEST_CASE("compound commands span lines", "[parser]") {
  auto s = split(
      "next_stage && {\n  if a; then\n    b\n  fi\n}\n"
      "for i in 1 2; do\n  echo $i\ndone\n"
      "while read x; do :; done < file\n"
      "case $x in\n  a|b) echo ab ;;\n  (c) ;;\n  *) echo other\nesac\n"
      "f() {\n  echo in f\n}\n"
      "function g { :; }\n"
      "( cd /tmp && ls )\n"
      "until false; do break; done\n"
      "select s in a b; do break; done\n"
      "for ((i = 0; i < 3; i++)); do echo $i; done\n"
      "(( x = 1 << 2 ))\n"
      "[[ $x =~ ^(a|b)$ && -n $y ]]\n");
  CHECK(s.lines == Lines{{1, 5}, {6, 8}, {9, 9}, {10, 14}, {15, 17}, {18, 18}, {19, 19}, {20, 20}, {21, 21},
                         {22, 22}, {23, 23}, {24, 24}});
}

TEST_CASE("and-or lists and pipelines continue after an operator at the end of a line", "[parser]") {
  auto s = split("a &&\n  b ||\n  c |\n  d\ne \\\n  f\ng\n");
  CHECK(s.lines == Lines{{1, 4}, {5, 6}, {7, 7}});
  CHECK(s.normalized[0] == "a && b || c | d");
  CHECK(s.normalized[1] == "e f");
}

TEST_CASE("quotes, escapes and comments hide separators", "[parser]") {
  auto s = split(
      "echo 'a;b\nc' \"d;$(echo \")\")\ne\" $'f\\'g;' \\; h#i # j; k\n"
      "echo `echo ';'` ${x:-;} $((1+2)) $[3] done\n");
  CHECK(s.lines == Lines{{1, 3}, {4, 4}});
  CHECK(s.normalized[0] == "echo 'a;b\nc' \"d;$(echo \")\")\ne\" $'f\\'g;' \\; h#i");
}

TEST_CASE("command substitution is parsed: case patterns and here-documents inside", "[parser]") {
  auto s = split("x=$(case a in a) echo \"a)\";; esac); y=$(cat <<EOF\n)\nEOF\n)\nz\n");
  CHECK(s.lines == Lines{{1, 1}, {1, 4}, {5, 5}});
}

TEST_CASE("here-documents: bodies belong to their command, several on a line, <<- and quoted delimiters",
          "[parser]") {
  auto s = split(
      "cat <<EOF; echo after\nbody; not a command\nEOF\n"
      "cat <<-'END' <<\"B\" &&\n\tone\n\tEND\ntwo $(\nB\necho joined\n"
      "last\n");
  CHECK(s.lines == Lines{{1, 3}, {1, 1}, {4, 9}, {10, 10}});
  auto units = parse_script("cat <<EOF; echo after\nbody\nEOF\n").units;
  REQUIRE(units.size() == 2);
  CHECK(units[0].spans.size() == 2);  // its own tokens, then its body after the next command
  CHECK(units[0].normalized == "cat << EOF <<body\nEOF\n");
}

TEST_CASE("an unquoted here-document joins lines ending in a backslash before looking for the delimiter",
          "[parser]") {
  auto s = split("cat <<EOF\na \\\nEOF\nEOF\nnext\n");
  CHECK(s.lines == Lines{{1, 4}, {5, 5}});
  auto q = split("cat <<'EOF'\na \\\nEOF\nnext\n");
  CHECK(q.lines == Lines{{1, 3}, {4, 4}});
}

TEST_CASE("arrays and subscripts keep their blanks and newlines", "[parser]") {
  auto s = split("a=(1 2\n # comment )\n 3)\nb[$i + 1]=x; c+=(4)\n");
  CHECK(s.lines == Lines{{1, 3}, {4, 4}, {4, 4}});
}

TEST_CASE("reserved words are words where bash says so", "[parser]") {
  auto s = split("echo if then fi }\n\"if\" x\n");
  CHECK(s.lines.size() == 2);
  CHECK(error_of("fi\\\n\n") == "1:1: syntax error near unexpected token `fi'");
}

TEST_CASE("layout and comments do not change the normalised text", "[parser]") {
  auto a = split("next_stage && {\n  apt-get update   # refresh\n  apt-get install -y curl\n}\n");
  auto b = split("# new comment\nnext_stage && { apt-get update\n\n\tapt-get install -y curl; }\n");
  auto c = split("next_stage &&\n  { apt-get update; apt-get install \\\n -y curl; }\n");
  REQUIRE(a.normalized.size() == 1);
  CHECK(a.normalized == b.normalized);
  CHECK(a.normalized == c.normalized);
  auto d = split("next_stage && { apt-get update; apt-get install -y wget; }\n");
  CHECK(a.normalized != d.normalized);
}

TEST_CASE("the leading word and operator of a top-level command are recorded", "[parser]") {
  auto units = parse_script("next_stage && a\neverytime\nnext_stage || b\nx | y\n").units;
  REQUIRE(units.size() == 4);
  CHECK(units[0].leading_word == "next_stage");
  CHECK(units[0].leading_operator == "&&");
  CHECK(units[0].normalized_rest == "a");
  CHECK(units[1].leading_word == "everytime");
  CHECK(units[1].leading_operator.empty());
  CHECK(units[2].leading_operator == "||");
  CHECK(units[3].leading_word.empty());
}

TEST_CASE("syntax errors are located like bash's", "[parser]") {
  CHECK(error_of("echo 'unterminated\n") == "1:6: unterminated single quote: no matching `'' before the end of the file");
  CHECK(error_of("a\necho \"x\n") == "2:6: unterminated double quote: no matching `\"' before the end of the file");
  CHECK(error_of("x=$(echo\n") == "1:3: unterminated command substitution: no matching `)' before the end of the file");
  CHECK(error_of("echo `date\n") == "1:6: unterminated command substitution: no matching ``' before the end of the file");
  CHECK(error_of("echo ${x\n") == "1:6: unterminated `${': no matching `}' before the end of the file");
  CHECK(error_of("if true; then\n  echo\n") == "1:1: `if' is not closed: expected `fi' before the end of the file");
  CHECK(error_of("  while true; do :\n") == "1:3: `while' is not closed: expected `done' before the end of the file");
  CHECK(error_of("{ echo\n") == "1:1: `{' is not closed: expected `}' before the end of the file");
  CHECK(error_of("case x in\n a) ;;\n") == "1:1: `case' is not closed: expected `esac' before the end of the file");
  CHECK(error_of("(echo\n") == "1:1: `(' is not closed: expected `)' before the end of the file");
  CHECK(error_of("echo a\nfi\n") == "2:1: syntax error near unexpected token `fi'");
  CHECK(error_of("if true; then echo; done\n") == "1:21: syntax error near unexpected token `done'");
  CHECK(error_of("echo a ;; b\n") == "1:8: syntax error near unexpected token `;;'");
  CHECK(error_of("a &&\n") == "2:1: syntax error: unexpected end of file");
  CHECK(error_of("cat <\n") == "1:6: syntax error near unexpected token `newline'");
  CHECK(error_of("if then fi\n") == "1:4: syntax error near unexpected token `then'");
  CHECK(error_of("echo )\n") == "1:6: syntax error near unexpected token `)'");
  CHECK(error_of("[[ a ; ]]\n") == "1:6: syntax error in conditional expression: unexpected token `;'");
  CHECK(error_of("a=(1 ; 2)\n") == "1:6: syntax error near unexpected token `;'");
}

TEST_CASE("a here-document that runs to the end of the file is a warning, as in bash", "[parser]") {
  auto parsed = parse_script("cat <<EOF\nno end\n");
  REQUIRE(parsed.warnings.size() == 1);
  CHECK(parsed.warnings[0].first.line == 1);
  CHECK(parsed.warnings[0].second == "here-document delimited by end of file (wanted `EOF')");
}

TEST_CASE("nesting beyond the limit is refused, not a crash", "[parser]") {
  std::string deep(5000, '(');
  CHECK_THAT(error_of(deep), Catch::Contains("nesting too deep"));
  std::string subs;
  for (int i = 0; i < 3000; ++i) subs += "$(";
  CHECK_THAT(error_of("echo " + subs), Catch::Contains("nesting too deep"));
  std::string braces;
  for (int i = 0; i < 3000; ++i) braces += "\"${x:-";
  CHECK_THAT(error_of("echo " + braces), Catch::Contains("nesting too deep"));
}

TEST_CASE("a command continued onto a line holding only a comment ends on that line, as in bash", "[parser]") {
  std::string text =
      "update-alternatives --install /usr/bin/x x /usr/bin/y 20 \\\n"
      "    #--slave /usr/bin/z z /usr/bin/w\n"
      "echo next\n";
  auto units = parse_script(text).units;
  REQUIRE(units.size() == 2);
  CHECK(units[0].first_line == 1);
  CHECK(units[0].last_line == 2);
  CHECK(unit_source(text, units[0]) ==
        "update-alternatives --install /usr/bin/x x /usr/bin/y 20 \\\n    #--slave /usr/bin/z z /usr/bin/w\n");
  CHECK(units[0].normalized == "update-alternatives --install /usr/bin/x x /usr/bin/y 20");
  CHECK(units[1].first_line == 3);
  CHECK(units[1].last_line == 3);
}

TEST_CASE("continued comments: several continued lines, blank lines, compound commands, a backslash in the comment",
          "[parser]") {
  CHECK(split("a \\\n  \\\n  # c\nb\n").lines == Lines{{1, 3}, {4, 4}});
  // A `\` ending the comment continues nothing.
  CHECK(split("a \\\n  # c \\\nb\n").lines == Lines{{1, 2}, {3, 3}});
  // A continued blank line, also after a word glued to the `\`.
  CHECK(split("a \\\n\nb\n").lines == Lines{{1, 2}, {3, 3}});
  CHECK(split("a\\\n\nb\n").lines == Lines{{1, 2}, {3, 3}});
  CHECK(split("for i in 1; do :; done \\\n  # | sort\nb\n").lines == Lines{{1, 2}, {3, 3}});
  CHECK(split("{ a; } \\\n # c\n( b ) \\\n # c\n").lines == Lines{{1, 2}, {3, 4}});
  // After `;` the command has ended: the comment is not part of it.
  CHECK(split("a; \\\n  # c\nb\n").lines == Lines{{1, 1}, {3, 3}});
  // Inside a compound command nothing changes.
  CHECK(split("if x; then\n  a \\\n  # c\n  b\nfi\nc\n").lines == Lines{{1, 5}, {6, 6}});
  // At the end of a file without a final newline.
  CHECK(split("a \\\n  # c").lines == Lines{{1, 2}});
  // A here-document's body starts after the comment's line.
  std::string text = "cat <<EOF \\\n  # c\nbody\nEOF\nnext\n";
  auto units = parse_script(text).units;
  REQUIRE(units.size() == 2);
  CHECK(units[0].last_line == 4);
  CHECK(unit_source(text, units[0]) == "cat <<EOF \\\n  # c\nbody\nEOF\n");
  CHECK(units[0].normalized == "cat << EOF <<body\nEOF\n");
  CHECK(units[1].first_line == 5);
}

TEST_CASE("a (( that turns out not to be arithmetic is read again as subshells from a clean state", "[parser]") {
  // The first reading, as arithmetic, already read the here-document inside
  // the $( ), or failed halfway through a $( ): both crashed once (found by
  // fuzzing).
  std::string text = "((echo $(cat <<EOF\nx\nEOF\n)) )\nnext\n";
  auto units = parse_script(text).units;
  REQUIRE(units.size() == 2);
  CHECK(units[0].spans == std::vector<std::pair<std::size_t, std::size_t>>{{0, 29}});
  CHECK(units[0].last_line == 4);
  CHECK(units[1].first_line == 5);
  CHECK(split("((<<\"\"\n$(>\n\n))\nf\n").lines == Lines{{1, 4}, {5, 5}});
}
