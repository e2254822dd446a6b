/**
 * JMH microbenchmarks (chunker, hashing, fs-verity, Cap'n Proto decoding, the read path) and the
 * test that checks {@code docker-compose.yml}. The benchmarks are not tests: surefire skips them
 * (no {@code Test} in their names) and they run only with {@code mvn -B -o -Pjmh verify}; see
 * {@code bench/JMH.md}.
 */
package dev.puzzlefs.bench;
