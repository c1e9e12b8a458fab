package faults

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/linkedin/goavro/v2"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
)

// proxy is a TCP proxy on a fixed loopback port in front of a server: down
// closes the port and every connection through it (the server unreachable,
// "connection refused"), up listens on the same port again.
type proxy struct {
	addr, target string
	mu           sync.Mutex
	ln           net.Listener
	conns        map[net.Conn]bool
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	p := &proxy{addr: "127.0.0.1:" + strconv.Itoa(freePort()), target: target, conns: map[net.Conn]bool{}}
	if err := p.up(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.down)
	return p
}

func (p *proxy) up() error {
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.serve(c)
		}
	}()
	return nil
}

func (p *proxy) serve(c net.Conn) {
	s, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	p.conns[c], p.conns[s] = true, true
	p.mu.Unlock()
	go func() { _, _ = io.Copy(s, c); s.Close() }()
	_, _ = io.Copy(c, s)
	c.Close()
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, s)
	p.mu.Unlock()
}

func (p *proxy) down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
}

// avroEndpointSchema is a Debezium AvroConverter envelope for endpoints.
const avroEndpointSchema = `{"type":"record","name":"Envelope","namespace":"service.public.endpoints","fields":[
 {"name":"before","type":["null",{"type":"record","name":"Value","fields":[
   {"name":"id","type":"string"},{"name":"company_id","type":["null","string"],"default":null},
   {"name":"name","type":["null","string"],"default":null},{"name":"enabled","type":["null","boolean"],"default":null}]}],"default":null},
 {"name":"after","type":["null","Value"],"default":null},
 {"name":"source","type":{"type":"record","name":"Source","namespace":"io.debezium.connector.postgresql","fields":[
   {"name":"lsn","type":["null","long"],"default":null},{"name":"ts_ms","type":"long"}]}},
 {"name":"op","type":"string"},{"name":"ts_ms","type":["null","long"],"default":null}]}`

// avroEndpoints are n new endpoints of c-acme in Avro (Confluent wire
// format, schema id id), 2 emails each.
func (e *env) avroEndpoints(t *testing.T, id int, from, n int) []*kgo.Record {
	t.Helper()
	codec, err := goavro.NewCodec(avroEndpointSchema)
	if err != nil {
		t.Fatal(err)
	}
	var out []*kgo.Record
	for i := from; i < from+n; i++ {
		e.lsn += 10
		ts := time.Now().UnixMilli()
		epID := "ep-" + strconv.Itoa(i)
		body, err := codec.BinaryFromNative(nil, map[string]any{"before": nil,
			"after": map[string]any{"service.public.endpoints.Value": map[string]any{"id": epID,
				"company_id": map[string]any{"string": "c-acme"}, "name": map[string]any{"string": "Room " + strconv.Itoa(i)},
				"enabled": map[string]any{"boolean": true}}},
			"source": map[string]any{"lsn": map[string]any{"long": e.lsn}, "ts_ms": ts},
			"op":     "c", "ts_ms": map[string]any{"long": ts}})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, &kgo.Record{Topic: e.id + "service.public.endpoints", Key: []byte(`{"id":"` + epID + `"}`),
			Value: append(binary.BigEndian.AppendUint32([]byte{0}, uint32(id)), body...)})
	}
	return out
}

// TestSchemaRegistryDown30s: the schema registry is unreachable for 30 s
// while Avro CDC records whose schema the process stage has not cached yet
// arrive. Nothing is dead-lettered: the stage retries the batch (and says
// so), and once the registry is back every email goes out once.
func TestSchemaRegistryDown30s(t *testing.T) {
	e := newEnv(t, 3)
	p := e.startProcess("process-1")
	s := e.startSend("send-1")
	e.produce(e.base()...)
	e.produce(e.endpoints(0, 25)...)
	waitFor(t, "the first 50 emails", 90*time.Second, func() bool { got, _ := e.sent(); return len(got) >= 50 })
	id, _, err := e.sr.RegisterSchema(e.id+"service.public.endpoints-value", sr.Schema{Schema: avroEndpointSchema, Type: sr.TypeAvro})
	if err != nil {
		t.Fatal(err)
	}
	e.registry.down()
	down := time.Now()
	e.produce(e.avroEndpoints(t, id, 25, 25)...)
	waitFor(t, "the process stage to retry", 60*time.Second, func() bool { return logged(p, "batch failed; it will be retried") })
	time.Sleep(30*time.Second - time.Since(down))
	if got, _ := e.sent(); len(got) != 50 {
		t.Fatalf("%d emails while the registry was down", len(got)-50)
	}
	if err := e.registry.up(); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	t.Logf("registry was down %s", back.Sub(down).Round(time.Second))
	waitFor(t, "all 100 emails", 3*time.Minute, func() bool { got, _ := e.sent(); return len(got) >= 100 })
	t.Logf("FIGURES %s: all emails out %s after the registry came back", t.Name(), time.Since(back).Round(100*time.Millisecond))
	e.checkExactly(endpointEmails(0, 50), 52, time.Minute)
	if dlq := e.topicRecords(e.dlq); len(dlq) != 0 {
		t.Fatalf("%d records dead-lettered during the outage", len(dlq))
	}
	alive(t, p, s)
}

// topicRecords reads every committed record of a topic.
func (e *env) topicRecords(topic string) []*kgo.Record {
	e.t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		e.t.Fatal(err)
	}
	defer cl.Close()
	var out []*kgo.Record
	for idle := 0; idle < 2; {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		fs := cl.PollFetches(ctx)
		cancel()
		n := 0
		fs.EachRecord(func(r *kgo.Record) { out = append(out, r); n++ })
		if n == 0 {
			idle++
		} else {
			idle = 0
		}
	}
	return out
}
