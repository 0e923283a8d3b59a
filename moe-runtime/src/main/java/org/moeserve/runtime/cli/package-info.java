/** The {@code moe} command line (picocli): generate, trace; the ./moe launcher at the repository root runs it. */
package org.moeserve.runtime.cli;
