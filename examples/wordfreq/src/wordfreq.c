/* wordfreq: prints the ten most frequent words (letters only, lower-cased)
 * of the files named on the command line, most frequent first, ties in
 * alphabetical order: "COUNT WORD" per line. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct count { char *word; int n; };

static int by_word(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static int by_count(const void *a, const void *b) {
  const struct count *x = a, *y = b;
  if (x->n != y->n) return y->n - x->n;
  return strcmp(x->word, y->word);
}

int main(int argc, char **argv) {
  size_t n = 0, cap = 1024;
  char **words = malloc(cap * sizeof *words);
  char buf[256];
  for (int i = 1; i < argc; ++i) {
    FILE *f = fopen(argv[i], "r");
    if (!f) { perror(argv[i]); return 1; }
    size_t len = 0;
    int c;
    do {
      c = fgetc(f);
      if (c != EOF && isalpha(c)) {
        if (len < sizeof buf - 1) buf[len++] = (char)tolower(c);
      } else if (len > 0) {
        buf[len] = '\0';
        if (n == cap) words = realloc(words, (cap *= 2) * sizeof *words);
        words[n++] = strdup(buf);
        len = 0;
      }
    } while (c != EOF);
    fclose(f);
  }
  qsort(words, n, sizeof *words, by_word);
  struct count *counts = malloc((n + 1) * sizeof *counts);
  size_t m = 0;
  for (size_t i = 0; i < n; ++i) {
    if (m > 0 && strcmp(counts[m - 1].word, words[i]) == 0) counts[m - 1].n++;
    else counts[m++] = (struct count){words[i], 1};
  }
  qsort(counts, m, sizeof *counts, by_count);
  for (size_t i = 0; i < m && i < 10; ++i) printf("%d %s\n", counts[i].n, counts[i].word);
  return 0;
}
