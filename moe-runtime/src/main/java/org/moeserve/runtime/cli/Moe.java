package org.moeserve.runtime.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/**
 * The {@code moe} command line. Usage errors print the message and the usage on stderr and exit 2; bad input
 * files (a broken checkpoint, a malformed trace) print one line naming what is wrong and exit 1.
 */
@Command(name = "moe", mixinStandardHelpOptions = true, version = "moe-serve 0.1.0",
        description = "Serve, trace and study Mixture-of-Experts models.",
        subcommands = {ServeCommand.class, GenerateCommand.class, TraceCommand.class, PredictorCommand.class, CacheSimCommand.class, PlanCommand.class, SimulateCommand.class, StatsCommand.class, ExportGgufCommand.class, QuantizeCommand.class, EvalCommand.class, SynthCommand.class})
public final class Moe implements Runnable {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        throw new CommandLine.ParameterException(spec.commandLine(), "name a command: serve, generate, trace, predictor, cache-sim or plan");
    }

    public static CommandLine commandLine() {
        CommandLine cl = new CommandLine(new Moe());
        cl.setExecutionExceptionHandler((ex, cmd, parsed) -> {
            if (ex instanceof UsageError) { // a flag's value the command refused: like picocli's own usage errors
                cmd.getErr().println("moe " + cmd.getCommandName() + ": " + ex.getMessage());
                cmd.usage(cmd.getErr());
                return 2;
            }
            if (ex instanceof IllegalArgumentException || ex instanceof org.moeserve.runtime.model.CheckpointException
                    || ex instanceof org.moeserve.routing.TraceFormatException || ex instanceof java.io.IOException) {
                cmd.getErr().println("moe " + cmd.getCommandName() + ": " + ex.getMessage());
                return 1;
            }
            throw ex;
        });
        return cl;
    }

    public static void main(String[] args) {
        if (args.length > 0 && args[0].equals("--heap-for-serve")) { // the launcher asks how large a heap serve needs
            System.exit(heapForServe(java.util.Arrays.copyOfRange(args, 1, args.length)));
        }
        System.exit(commandLine().execute(args));
    }

    /** Prints serve's heap in MiB for these arguments (nothing if they do not parse: serve will say why). */
    static int heapForServe(String[] args) {
        try {
            ServeCommand s = new ServeCommand();
            new CommandLine(s).parseArgs(args);
            System.out.println(s.heapMegabytes());
        } catch (Exception e) {
            // no figure: the launcher keeps the JVM's default and the real run reports the problem
        }
        return 0;
    }
}
