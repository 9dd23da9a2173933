import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Comparator;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.stream.Stream;

import org.neo4j.configuration.GraphDatabaseInternalSettings;
import org.neo4j.configuration.GraphDatabaseSettings;
import org.neo4j.configuration.connectors.BoltConnector;
import org.neo4j.configuration.connectors.ConnectorPortRegister;
import org.neo4j.configuration.connectors.ConnectorType;
import org.neo4j.configuration.connectors.HttpConnector;
import org.neo4j.configuration.helpers.SocketAddress;
import org.neo4j.dbms.api.DatabaseManagementService;
import org.neo4j.dbms.api.DatabaseManagementServiceBuilder;
import org.neo4j.io.ByteUnit;
import org.neo4j.kernel.internal.GraphDatabaseAPI;
import org.neo4j.logging.Level;
import org.neo4j.logging.log4j.Log4jLogProvider;

/**
 * A throwaway Neo4j 5 Community server for flowgraph's tests, CI and benchmarks: the embedded
 * DBMS with its Bolt connector on 127.0.0.1, authentication on.
 *
 * <pre>
 * FlowgraphNeo4j [--home DIR] [--port N] [--pagecache SIZE]
 * </pre>
 *
 * Without --home the DBMS lives in a fresh temporary folder that is deleted at exit; with it,
 * an existing Neo4j home (for example one filled by neo4j-admin database import) is opened.
 * User neo4j gets the password from FLOWGRAPH_NEO4J_PASSWORD (default flowgraph-test). The
 * Bolt URI is printed as the only line on stdout once the connector accepts connections; logs
 * go to stderr. The process stops on SIGTERM/SIGINT or when its stdin reaches end of file.
 */
public final class FlowgraphNeo4j {
    private FlowgraphNeo4j() {}

    public static void main(String[] args) throws Exception {
        Path home = null;
        int port = 0;
        String pagecache = "512m";
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            String v = i + 1 < args.length ? args[i + 1] : null;
            switch (a) {
                case "--home" -> { home = Path.of(need(a, v)).toAbsolutePath(); i++; }
                case "--port" -> { port = Integer.parseInt(need(a, v)); i++; }
                case "--pagecache" -> { pagecache = need(a, v); i++; }
                case "-h", "--help" -> {
                    System.err.println("usage: server [--home DIR] [--port N] [--pagecache SIZE]");
                    return;
                }
                default -> usage("unknown argument " + a);
            }
        }
        String password = System.getenv().getOrDefault("FLOWGRAPH_NEO4J_PASSWORD", "flowgraph-test");
        if (password.isEmpty()) {
            password = "flowgraph-test";
        }
        boolean temporary = home == null;
        if (temporary) {
            home = Files.createTempDirectory("flowgraph-neo4j-");
        } else {
            Files.createDirectories(home);
        }
        long started = System.nanoTime();
        Log4jLogProvider logs = new Log4jLogProvider(System.err, Level.WARN);
        DatabaseManagementService dbms = new DatabaseManagementServiceBuilder(home)
                .setUserLogProvider(logs)
                .setConfig(GraphDatabaseSettings.auth_enabled, true)
                .setConfig(GraphDatabaseSettings.pagecache_memory, ByteUnit.parse(pagecache))
                .setConfig(BoltConnector.enabled, true)
                .setConfig(BoltConnector.listen_address, new SocketAddress("127.0.0.1", port))
                .setConfig(BoltConnector.advertised_address, new SocketAddress("127.0.0.1", port))
                .setConfig(BoltConnector.encryption_level, BoltConnector.EncryptionLevel.DISABLED)
                .setConfig(HttpConnector.enabled, false)
                // a throwaway server: no 10 s of graceful Netty shutdown
                .setConfig(GraphDatabaseInternalSettings.netty_server_shutdown_quiet_period, 0)
                .setConfig(GraphDatabaseInternalSettings.netty_server_shutdown_timeout, Duration.ofSeconds(1))
                .build();
        final Path homeDir = home;
        final CountDownLatch stop = new CountDownLatch(1);
        Thread hook = new Thread(() -> {
            stop.countDown();
            shutdown(dbms, homeDir, temporary);
        }, "flowgraph-neo4j-shutdown");
        Runtime.getRuntime().addShutdownHook(hook);

        // The system database keeps the users; set the password on every start so that a
        // reused --home always answers to the password of this run.
        dbms.database(GraphDatabaseSettings.SYSTEM_DATABASE_NAME).executeTransactionally(
                "ALTER USER neo4j SET PASSWORD $password CHANGE NOT REQUIRED",
                Map.of("password", password));

        GraphDatabaseAPI system = (GraphDatabaseAPI) dbms.database(GraphDatabaseSettings.SYSTEM_DATABASE_NAME);
        var bolt = system.getDependencyResolver().resolveDependency(ConnectorPortRegister.class)
                .getLocalAddress(ConnectorType.BOLT);
        if (bolt == null) {
            throw new IllegalStateException("the Bolt connector did not start");
        }
        waitForPort(bolt.getHost(), bolt.getPort());
        System.err.printf("flowgraph-neo4j: Neo4j %s up in %.1f s, home %s%n",
                org.neo4j.kernel.internal.Version.getNeo4jVersion(),
                (System.nanoTime() - started) / 1e9, homeDir);
        System.out.println("bolt://127.0.0.1:" + bolt.getPort());
        System.out.flush();

        Thread stdin = new Thread(() -> {
            try (InputStream in = System.in) {
                byte[] buf = new byte[256];
                while (in.read(buf) >= 0) {
                    // keep reading until end of file
                }
            } catch (IOException e) {
                // a broken stdin counts as closed
            }
            System.err.println("flowgraph-neo4j: stdin closed, stopping");
            System.exit(0); // runs the shutdown hook
        }, "flowgraph-neo4j-stdin");
        stdin.setDaemon(true);
        stdin.start();
        stop.await();
    }

    private static void waitForPort(String host, int port) throws InterruptedException {
        long deadline = System.nanoTime() + 60_000_000_000L;
        while (true) {
            try (Socket s = new Socket()) {
                s.connect(new InetSocketAddress(host, port), 1000);
                return;
            } catch (IOException e) {
                if (System.nanoTime() > deadline) {
                    throw new IllegalStateException("Bolt port " + port + " does not accept connections", e);
                }
                Thread.sleep(50);
            }
        }
    }

    private static synchronized void shutdown(DatabaseManagementService dbms, Path home, boolean temporary) {
        try {
            dbms.shutdown();
        } catch (RuntimeException e) {
            System.err.println("flowgraph-neo4j: shutdown failed: " + e);
        }
        if (temporary) {
            try (Stream<Path> paths = Files.walk(home)) {
                paths.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
            } catch (IOException e) {
                System.err.println("flowgraph-neo4j: could not delete " + home + ": " + e);
            }
        }
        System.err.println("flowgraph-neo4j: stopped");
    }

    private static String need(String option, String value) {
        if (value == null) {
            usage(option + " needs a value");
        }
        return value;
    }

    private static void usage(String message) {
        System.err.println("server: " + message);
        System.err.println("usage: server [--home DIR] [--port N] [--pagecache SIZE]");
        System.exit(2);
    }
}
