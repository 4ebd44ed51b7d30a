// Splits a docker-setup.sh into its top-level commands exactly where bash
// does, without running anything.
//
// How it works: a recursive-descent parser over bash's grammar (lists,
// and-or lists, pipelines, simple and compound commands, function
// definitions) on a context-sensitive lexer (quotes, $'...', $"...",
// backslashes, comments, here-documents, $( ), backticks, ${ }, $(( )), $[ ],
// process substitution, array assignments, [[ ]] with =~ regexes). $( ) is
// parsed as commands, as bash 5 does, so a `case` pattern's `)` or a
// here-document inside it is read correctly. Nothing is built but what the
// stage engine needs: the top-level and-or lists ("units") with their byte
// spans, lines, a normalised text and the simple commands inside them.
//
// A unit is one and-or list at the top level: the text between two of `;`,
// `&` and newline outside any compound command. Its spans cover its tokens
// (its terminating `;` or `&` included) and the bodies of its
// here-documents, which bash reads on the lines after it. When its last
// line ends in a live `\` and the next holds only a comment or blanks, bash
// joins that line to the command, which ends at its newline: the spans then
// also cover that line and its newline.
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ce::stages {

struct SourceLocation {
  int line = 1;    // 1-based
  int column = 1;  // 1-based, in bytes
};

// A syntax error, located as bash would locate it (the unexpected token, or
// the opening quote or keyword that was never closed).
class SyntaxError : public std::runtime_error {
 public:
  SyntaxError(SourceLocation where, std::string message)
      : std::runtime_error(message), where_(where), message_(std::move(message)) {}
  SourceLocation where() const { return where_; }
  const std::string& message() const { return message_; }

 private:
  SourceLocation where_;
  std::string message_;
};

// A simple command anywhere in the script (compound commands and $( )
// included): its words as written, quotes kept.
struct SimpleCommand {
  int line = 0;
  int column = 0;
  std::vector<std::string> words;
};

struct Unit {
  std::vector<std::pair<std::size_t, std::size_t>> spans;  // [begin, end) byte ranges
  int first_line = 0;
  int last_line = 0;
  int first_column = 0;
  // Tokens joined by single spaces, newlines as "\n", comments and layout
  // dropped; here-document bodies verbatim. Equal for two texts that differ
  // only in comments, indentation, blanks between words, blank lines and
  // `\` line continuations between words.
  std::string normalized;
  // The leading simple command when it is one plain word (e.g. next_stage),
  // and the operator after it ("&&", "||", "|", or "" at the end).
  std::string leading_word;
  std::string leading_operator;
  // Normalised text after the leading word and its `&&`.
  std::string normalized_rest;
  std::vector<SimpleCommand> commands;
};

struct ParsedScript {
  std::vector<Unit> units;
  std::vector<std::pair<SourceLocation, std::string>> warnings;
};

// Parses a whole script. Throws SyntaxError.
ParsedScript parse_script(std::string_view text);

// A unit's source: its spans, with only the newlines of the gaps between
// them kept (so a command and its here-document body stay on their lines).
std::string unit_source(std::string_view text, const Unit& unit);

}  // namespace ce::stages
