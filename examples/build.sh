#!/bin/bash
# A small script in the shape travis-build generates (folds, timers, the footer line),
# for the embedded demo: `travis-worker run-job examples/example-payload.json --script examples/build.sh`.
ANSI_CLEAR="\033[0K"
ANSI_GREEN="\033[32;1m"
ANSI_RESET="\033[0m"

travis_fold() { echo -en "travis_fold:${1}:${2}\r${ANSI_CLEAR}"; }

travis_fold start system_info
echo "Build system information"
echo "Build language: ${TRAVIS_LANGUAGE:-ruby}"
echo "Kernel: $(uname -sr)"
travis_fold end system_info

echo "\$ echo Hello World"
echo Hello World
result=$?
echo -e "\n${ANSI_GREEN}The command \"echo Hello World\" exited with ${result}.${ANSI_RESET}"
echo -e "\nDone. Your build exited with ${result}."
exit "${result}"
