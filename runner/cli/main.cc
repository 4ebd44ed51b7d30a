#include "runner/cli/cli.h"

int main(int argc, char** argv) { return ce::runner::main(argc, argv); }
