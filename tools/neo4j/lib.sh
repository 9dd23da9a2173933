# Sourced by tools/neo4j/server and tools/neo4j/neo4j-admin: resolve Neo4j's runtime classpath
# with Maven (jars cached in ~/.m2, or wherever MAVEN_OPTS/-Dmaven.repo.local says), compile
# the launcher, and cache both under a key of pom.xml + the sources. Prints nothing on stdout.
NEO4J_TOOLS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
NEO4J_CACHE_ROOT=${FLOWGRAPH_NEO4J_CACHE:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/flowgraph-neo4j}

neo4j_prepare() {
    local key
    key=$(cat "$NEO4J_TOOLS/pom.xml" "$NEO4J_TOOLS"/src/*.java | sha256sum | cut -c1-16)
    NEO4J_CACHE="$NEO4J_CACHE_ROOT/$key"
    if [[ -f "$NEO4J_CACHE/ready" ]] && _neo4j_jars_present; then
        NEO4J_CP="$NEO4J_CACHE/classes:$(cat "$NEO4J_CACHE/classpath.txt")"
        return 0
    fi
    mkdir -p "$NEO4J_CACHE_ROOT"
    (
        # one builder at a time; the others wait and then reuse its result
        flock 9
        if [[ -f "$NEO4J_CACHE/ready" ]] && _neo4j_jars_present; then exit 0; fi
        local tmp
        tmp=$(mktemp -d "$NEO4J_CACHE_ROOT/.build-XXXXXX")
        echo "flowgraph-neo4j: fetching Neo4j with Maven (first run only)..." >&2
        local t0=$SECONDS
        # (Maven 3.8 prints colour resets even in batch mode: strip them)
        mvn -B -q -f "$NEO4J_TOOLS/pom.xml" ${FLOWGRAPH_MAVEN_ARGS:-} \
            dependency:build-classpath -Dmdep.includeScope=runtime \
            -Dmdep.outputFile="$tmp/classpath.txt" 2>&1 | sed $'s/\e\\[[0-9;]*m//g' >&2
        mkdir -p "$tmp/classes"
        javac -nowarn -d "$tmp/classes" -cp "$(cat "$tmp/classpath.txt")" "$NEO4J_TOOLS"/src/*.java >&2
        touch "$tmp/ready"
        rm -rf "$NEO4J_CACHE"
        mv "$tmp" "$NEO4J_CACHE"
        echo "flowgraph-neo4j: classpath ready in $((SECONDS - t0)) s ($NEO4J_CACHE)" >&2
    ) 9>"$NEO4J_CACHE_ROOT/.lock"
    NEO4J_CP="$NEO4J_CACHE/classes:$(cat "$NEO4J_CACHE/classpath.txt")"
}

# the cached classpath names jars in the Maven repository; a wiped ~/.m2 means fetch again
_neo4j_jars_present() {
    local first
    first=$(cut -d: -f1 "$NEO4J_CACHE/classpath.txt")
    [[ -f "$first" ]]
}

# JVM flags Neo4j's own launch scripts use on Java 17
NEO4J_JVM_FLAGS=(
    -XX:+UseG1GC -XX:-OmitStackTraceInFastThrow -XX:+DisableExplicitGC
    --add-opens=java.base/java.nio=ALL-UNNAMED --add-opens=java.base/java.io=ALL-UNNAMED
    --add-opens=java.base/sun.nio.ch=ALL-UNNAMED --add-opens=java.base/java.lang=ALL-UNNAMED
    --add-exports=java.base/sun.nio.ch=ALL-UNNAMED
    -Dlog4j2.disable.jmx=true -Dfile.encoding=UTF-8
)
