// The JInterface peer of bench/dist.py: a Java hidden node that runs the same
// send / receive / gen:call workloads against the BEAM node. Compiled at bench
// time with javac against OtpErlang.jar; driven by one command per stdin line,
// one answer per stdout line:
//
//   sink N           -> "READY" once mbox jsink exists, then "RESULT <micros>"
//                       (first to last of N messages)
//   send KIND N S    -> S threads, one mbox each, send N/S messages of KIND
//                       (small | kb1 | kb64) to {bench_sink, Beam}; "DONE"
//   call N           -> N gen:calls to {bench_srv, Beam}; "RESULT <p50 ns> <p99 ns>"
//   quit
//
// usage: java -cp OtpErlang.jar:DIR JNode NAME COOKIE EPMD_PORT BEAM_NODE

import com.ericsson.otp.erlang.*;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.util.Arrays;

public class JNode {
    static OtpNode node;
    static String beam;

    public static void main(String[] args) throws Exception {
        OtpEpmd.useEpmdPort(Integer.parseInt(args[2]));
        node = new OtpNode(args[0], args[1]);
        beam = args[3];
        if (!node.ping(beam, 5000)) {
            System.out.println("ERROR cannot reach " + beam);
            return;
        }
        OtpMbox sink = null;
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
        System.out.println("HELLO " + node.node());
        String line;
        while ((line = in.readLine()) != null) {
            String[] w = line.trim().split(" ");
            if (w[0].equals("sink")) {
                if (sink == null) sink = node.createMbox("jsink");
                int n = Integer.parseInt(w[1]);
                System.out.println("READY");
                sink.receive();
                long t0 = System.nanoTime();
                for (int i = 1; i < n; i++) sink.receive();
                long t1 = System.nanoTime();
                System.out.println("RESULT " + (t1 - t0) / 1000);
            } else if (w[0].equals("send")) {
                send(w[1], Integer.parseInt(w[2]), Integer.parseInt(w[3]));
                System.out.println("DONE");
            } else if (w[0].equals("call")) {
                call(Integer.parseInt(w[1]));
            } else if (w[0].equals("quit")) {
                break;
            }
        }
        node.close();
        System.exit(0);
    }

    static OtpErlangObject payload(String kind, int i) {
        if (kind.equals("small"))
            return new OtpErlangTuple(new OtpErlangObject[] {new OtpErlangAtom("seq"), new OtpErlangInt(i)});
        byte[] b = new byte[kind.equals("kb1") ? 1024 : 65536];
        Arrays.fill(b, (byte) 'x');
        return new OtpErlangBinary(b);
    }

    static void send(String kind, int n, int senders) throws Exception {
        int per = n / senders;
        Thread[] ts = new Thread[senders];
        for (int s = 0; s < senders; s++) {
            final OtpMbox mbox = node.createMbox();
            ts[s] = new Thread(() -> {
                OtpErlangObject bin = kind.equals("small") ? null : payload(kind, 0);
                for (int i = per; i > 0; i--)
                    mbox.send("bench_sink", beam, bin == null ? payload(kind, i) : bin);
                mbox.close();
            });
        }
        for (Thread t : ts) t.start();
        for (Thread t : ts) t.join();
    }

    static void call(int n) throws Exception {
        OtpMbox mbox = node.createMbox();
        OtpErlangAtom req = new OtpErlangAtom("ping");
        OtpErlangAtom genCall = new OtpErlangAtom("$gen_call");
        long[] ts = new long[n];
        for (int i = -(n / 10 + 1); i < n; i++) {
            OtpErlangRef tag = node.createRef();
            OtpErlangTuple from = new OtpErlangTuple(new OtpErlangObject[] {mbox.self(), tag});
            long t0 = System.nanoTime();
            mbox.send("bench_srv", beam, new OtpErlangTuple(new OtpErlangObject[] {genCall, from, req}));
            while (true) {
                OtpErlangObject m = mbox.receive();
                if (m instanceof OtpErlangTuple && ((OtpErlangTuple) m).arity() == 2
                        && tag.equals(((OtpErlangTuple) m).elementAt(0))) break;
            }
            if (i >= 0) ts[i] = System.nanoTime() - t0;
        }
        Arrays.sort(ts);
        System.out.println("RESULT " + ts[Math.max(0, (n * 50 + 99) / 100 - 1)] + " "
                + ts[Math.max(0, (n * 99 + 99) / 100 - 1)]);
    }
}
