// A small hls::stream for C simulation: a FIFO with the blocking read/write interface of Vitis HLS.
// Synthesis uses the tool's own header (this folder is on the include path of the g++ builds only);
// this one only has to behave the same in software.
// Reading an empty stream is a design error (the hardware would stall forever), so it aborts loudly.
#ifndef E2_HLS_STREAM_H
#define E2_HLS_STREAM_H

#include <cstdio>
#include <cstdlib>
#include <deque>
#include <string>

namespace hls {

template <typename T>
class stream {
public:
    stream() : name_("stream") {}
    explicit stream(const char *name) : name_(name) {}
    stream(const stream &) = delete;
    stream &operator=(const stream &) = delete;

    void write(const T &v) { fifo_.push_back(v); }
    void operator<<(const T &v) { write(v); }

    T read() {
        if (fifo_.empty()) {
            std::fprintf(stderr, "hls::stream '%s': read from an empty stream (a deadlock in hardware)\n", name_.c_str());
            std::abort();
        }
        T v = fifo_.front();
        fifo_.pop_front();
        return v;
    }
    void read(T &v) { v = read(); }
    void operator>>(T &v) { v = read(); }

    // Non-blocking forms: return false instead of stalling.
    bool read_nb(T &v) {
        if (fifo_.empty()) return false;
        v = read();
        return true;
    }
    bool write_nb(const T &v) {
        write(v);
        return true;
    }

    bool empty() const { return fifo_.empty(); }
    bool full() const { return false; }  // unbounded in software
    std::size_t size() const { return fifo_.size(); }

private:
    std::deque<T> fifo_;
    std::string name_;
};

}  // namespace hls

#endif
