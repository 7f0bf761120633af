//! An anonymous mapping touched page by page, the unit every allocation
//! workload is built from.

use crate::plan::Pages;

const PAGE: usize = 4096;
const HUGE_PAGE: usize = 2 << 20;

/// Virtual space reserved up front; memory is charged only as it is touched.
#[derive(Debug)]
pub struct Region {
    base: *mut u8,
    map_len: usize,
    start: *mut u8,
    len: usize,
    touched: usize,
}

impl Region {
    /// Reserve `len` bytes; with huge pages, aligned to 2 MiB and advised for THP.
    pub fn reserve(len: u64, pages: Pages) -> std::io::Result<Region> {
        let len = usize::try_from(len)
            .map_err(|_| std::io::Error::other("size exceeds the address space"))?;
        if len == 0 {
            return Ok(Region {
                base: std::ptr::null_mut(),
                map_len: 0,
                start: std::ptr::null_mut(),
                len: 0,
                touched: 0,
            });
        }
        let align = if pages == Pages::Huge {
            HUGE_PAGE
        } else {
            PAGE
        };
        let map_len = len.next_multiple_of(align) + align;
        // SAFETY: a fresh private anonymous mapping; checked for MAP_FAILED below.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        let base = base.cast::<u8>();
        let offset = (base as usize).next_multiple_of(align) - base as usize;
        // SAFETY: offset < align <= map_len - len, so start..start+len is inside the mapping.
        let start = unsafe { base.add(offset) };
        if pages == Pages::Huge {
            // SAFETY: advising a range inside our own mapping.
            unsafe {
                libc::madvise(
                    start.cast(),
                    len.next_multiple_of(HUGE_PAGE),
                    libc::MADV_HUGEPAGE,
                )
            };
        }
        Ok(Region {
            base,
            map_len,
            start,
            len,
            touched: 0,
        })
    }

    /// Bytes touched so far.
    pub fn touched(&self) -> u64 {
        self.touched as u64
    }

    /// Write one byte in every page up to `upto` bytes (capped at the region).
    pub fn touch_to(&mut self, upto: u64) {
        let upto = (upto.min(self.len as u64) as usize)
            .next_multiple_of(PAGE)
            .min(self.len);
        let mut off = self.touched.next_multiple_of(PAGE);
        while off < upto {
            // SAFETY: off < len, inside the mapping; volatile so the write is not elided.
            unsafe { self.start.add(off).write_volatile(1) };
            off += PAGE;
        }
        self.touched = self.touched.max(upto);
    }

    /// `len` bytes from `offset` for writing; they count as touched.
    pub fn slice_mut(&mut self, offset: usize, len: usize) -> &mut [u8] {
        assert!(offset + len <= self.len, "slice past the region");
        self.touched = self.touched.max(offset + len);
        // SAFETY: offset..offset+len lies inside our mapping (asserted above),
        // and &mut self makes the slice the only reference.
        unsafe { std::slice::from_raw_parts_mut(self.start.add(offset), len) }
    }

    /// `len` bytes from `offset` for reading.
    pub fn slice(&self, offset: usize, len: usize) -> &[u8] {
        assert!(offset + len <= self.len, "slice past the region");
        // SAFETY: inside our mapping (asserted above); untouched pages read as zeros.
        unsafe { std::slice::from_raw_parts(self.start.add(offset), len) }
    }

    /// Lock the whole region in memory (page-locked, as a pinned DMA buffer is).
    pub fn lock(&mut self) -> std::io::Result<()> {
        if self.len == 0 {
            return Ok(());
        }
        // SAFETY: locking a range inside our own mapping.
        if unsafe { libc::mlock(self.start.cast(), self.len) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        self.touched = self.len;
        Ok(())
    }

    /// Give the touched pages back to the kernel; the reservation stays.
    pub fn release(&mut self) {
        if self.touched > 0 {
            // SAFETY: the touched range lies inside our mapping.
            unsafe { libc::madvise(self.start.cast(), self.touched, libc::MADV_DONTNEED) };
            self.touched = 0;
        }
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        if !self.base.is_null() {
            // SAFETY: unmapping exactly what reserve mapped.
            unsafe { libc::munmap(self.base.cast(), self.map_len) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Resident bytes of the region, page by page (mincore), unaffected by other threads.
    fn resident(r: &Region) -> u64 {
        let pages = r.len.div_ceil(PAGE);
        let mut vec = vec![0u8; pages];
        // SAFETY: start..start+len is our mapping; vec has one byte per page.
        let rc = unsafe { libc::mincore(r.start.cast(), r.len, vec.as_mut_ptr()) };
        assert_eq!(rc, 0);
        vec.iter().filter(|b| *b & 1 == 1).count() as u64 * PAGE as u64
    }

    #[test]
    fn touching_charges_and_release_returns() {
        let mut r = Region::reserve(64 << 20, Pages::Small).unwrap();
        assert_eq!(resident(&r), 0, "reserving costs nothing");
        r.touch_to(32 << 20);
        assert_eq!(r.touched(), 32 << 20);
        assert_eq!(resident(&r), 32 << 20);
        r.touch_to(1 << 30);
        assert_eq!(r.touched(), 64 << 20, "capped at the region");
        assert_eq!(resident(&r), 64 << 20);
        r.release();
        assert_eq!(r.touched(), 0);
        assert_eq!(resident(&r), 0, "release returned the pages");
    }

    #[test]
    fn huge_region_is_aligned() {
        let r = Region::reserve(4 << 20, Pages::Huge).unwrap();
        assert_eq!(r.start as usize % HUGE_PAGE, 0);
        assert!(Region::reserve(0, Pages::Small).is_ok());
    }
}
